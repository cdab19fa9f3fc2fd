"""The cost model: how long a task takes on a device, split over a CPU core and a GPU, and how
long data takes to move between devices.

For task i (size S_i GFLOP, data-parallel share p_i, input data M_i MB) on device d (parallel
rate R_d, scalar rate r_d GFLOP/s, host link bandwidth B_d MB/s, latency L_d s):

    compute(i, d)  = S_i * (p_i / R_d + (1 - p_i) / r_d)
    transfer(i, d) = L_d + M_i / B_d          (0 on a CPU core: it reads host memory)
    E(i, d)        = compute(i, d) + transfer(i, d)

A CPU core has R = r, so only its speed matters; a GPU has R >> r, so it wins only for tasks with
a high data-parallel share and little data to move.

**Split.** A share f of the task runs on GPU g while the rest runs on CPU core c, concurrently;
the GPU part moves only its share of the data. Both devices are held until the slower part ends:

    T(f) = max(L_g + f * (E(i, g) - L_g),  (1 - f) * E(i, c))      for 0 < f < 1
    T(0) = E(i, c),  T(1) = E(i, g)

The first term grows with f, the second shrinks, so the best split balances them:
f* = (E(i, c) - L_g) / (E(i, c) + E(i, g) - L_g), clipped to what fits in each device's memory
(f * M_i on the GPU, (1 - f) * M_i on the core). When E(i, c) is comparable to E(i, g), f* is an
interior trade-off and T(f*) beats both devices alone; when one device is far faster, f* tends to
0 or 1.

**Transfers between tasks.** An edge carrying D MB from device a to device b costs nothing when
a = b or when both are CPU cores (shared host memory); otherwise the data goes through host
memory: (L_a + D / B_a if a is a GPU) + (L_b + D / B_b if b is a GPU). A split task's output is
in host memory (with its CPU core). Links have no contention, as in HEFT's model. With explicit
costs the edge's given cost is paid whenever the two devices differ, as in the literature.
A task's own input M is staged from host memory in E(i, d) whatever its parents did, and the data
parents hand over is charged per edge on top: for imported workflows, whose M counts every input
file, files a parent produced are counted twice — a conservative approximation.
"""

from __future__ import annotations

import numpy as np

from app.sim.cluster import Cluster, DeviceKind
from app.sim.workload import Workload


def compute_time(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Seconds of pure computation, shape (num_tasks, num_devices)."""
    parallel = workload.intensity[:, None] / cluster.speed[None, :]
    serial = (1.0 - workload.intensity)[:, None] / cluster.scalar_speed[None, :]
    return workload.size[:, None] * (parallel + serial)


def transfer_time(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Seconds to move each task's input data to each device, shape (num_tasks, num_devices)."""
    return _transfer(
        (cluster.kind == DeviceKind.GPU)[None, :],
        cluster.latency[None, :],
        workload.memory[:, None],
        cluster.bandwidth[None, :],
    )


def transfer_times_of(
    workload: Workload, cluster: Cluster, tasks: np.ndarray, devices: np.ndarray
) -> np.ndarray:
    """transfer_time's entries (tasks[k], devices[k]) alone, bit for bit: what a few thousand
    chosen executions need, without the whole (num_tasks, num_devices) table."""
    return _transfer(
        cluster.kind[devices] == DeviceKind.GPU,
        cluster.latency[devices],
        workload.memory[tasks],
        cluster.bandwidth[devices],
    )


def _transfer(
    on_gpu: np.ndarray, latency: np.ndarray, memory: np.ndarray, bandwidth: np.ndarray
) -> np.ndarray:
    """Latency plus the data over the bandwidth, to a GPU; nothing to a CPU core."""
    return np.where(on_gpu, latency + memory / bandwidth, 0.0)


def execution_time(workload: Workload, cluster: Cluster) -> np.ndarray:
    """E(i, d): seconds from start to finish of each task on each device, (num_tasks, devices).

    With explicit costs these are the given table (one column per device, or two columns, CPU
    and GPU, applied to every device of that kind)."""
    if workload.exec_cost is None:
        return compute_time(workload, cluster) + transfer_time(workload, cluster)
    cost = workload.exec_cost
    if cost.shape[1] == cluster.num_devices:
        return cost.copy()
    if cost.shape[1] == 2 and cluster.cpus.size and cluster.gpus.size:
        return cost[:, cluster.kind.astype(np.int64)]
    raise ValueError(
        f"explicit costs have {cost.shape[1]} columns; the cluster has {cluster.num_devices} "
        "devices (give one column per device, or two, CPU and GPU, for a cluster of both)"
    )


def fits(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Whether each task's data fits in each device's memory, shape (num_tasks, num_devices)."""
    return workload.memory[:, None] <= cluster.memory[None, :]


def split_time(
    cpu_time: np.ndarray,
    gpu_time: np.ndarray,
    latency: np.ndarray | float,
    fraction: np.ndarray | float,
) -> np.ndarray:
    """T(f) for arrays that broadcast together (seconds)."""
    f = np.asarray(fraction, dtype=np.float64)
    gpu_part = np.where(f > 0, latency + f * (gpu_time - latency), 0.0)
    cpu_part = (1.0 - f) * cpu_time
    return np.maximum(gpu_part, cpu_part)


def best_fraction(
    cpu_time: np.ndarray | float,
    gpu_time: np.ndarray | float,
    latency: np.ndarray | float,
    low: np.ndarray | float = 0.0,
    high: np.ndarray | float = 1.0,
) -> np.ndarray:
    """f* clipped to [low, high] (the shares that fit both devices' memory)."""
    cpu_time, gpu_time = np.asarray(cpu_time, float), np.asarray(gpu_time, float)
    denominator = cpu_time + gpu_time - latency
    with np.errstate(divide="ignore", invalid="ignore"):
        balanced = np.where(denominator > 0, (cpu_time - latency) / denominator, 0.0)
    return np.clip(balanced, low, high)


def fraction_bounds(
    memory: np.ndarray, cpu_memory: float, gpu_memory: float
) -> tuple[np.ndarray, np.ndarray]:
    """The GPU shares f for which f * M fits the GPU and (1 - f) * M fits the CPU core; an empty
    range (low > high) means no split fits."""
    with np.errstate(divide="ignore"):
        low = np.where(memory > 0, np.maximum(0.0, 1.0 - cpu_memory / memory), 0.0)
        high = np.where(memory > 0, np.minimum(1.0, gpu_memory / memory), 1.0)
    return low, high


def edge_transfer(
    cluster: Cluster, data: float, explicit_cost: float | None, source: int
) -> np.ndarray:
    """Seconds to move one edge's data from `source` to every device, shape (num_devices,)."""
    if explicit_cost is not None:
        cost = np.full(cluster.num_devices, explicit_cost)
    else:
        gpu = cluster.kind == DeviceKind.GPU
        into = np.where(gpu, cluster.latency + data / cluster.bandwidth, 0.0)
        out_of = cluster.latency[source] + data / cluster.bandwidth[source] if gpu[source] else 0.0
        cost = into + out_of
    cost[source] = 0.0
    return cost
