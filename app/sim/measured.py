"""Truth from a kernel profile: what each task really takes when the hardware is a measured machine.

Every workload whose tasks call kernels — tiled DAGs (tiled.py) and the workloads drawn from a
profile (kernelmix.py): each task's category is its kernel, `tile_size` the b of its b x b tiles —
runs on the times its cluster's kernel profile (profile.py) measured. Workloads that state their
costs (explicit tables) or only abstract sizes (imported files, with no kernel to look up) run on
the cost model's times: knowledge.py.

For task i calling kernel k_i on b_i x b_i tiles, on device d of kind K_d ("cpu", "gpu"):

    truth(i, d) = draw(k_i, K_d, b_i) + staging(i, d)

- **draw**: one time drawn from the profile's measured distribution of (k_i, K_d, b_i), contention
  "alone" (Profile.draws: sizes between measured ones interpolated log-log, outside the measured
  range `NotInProfile`, never an extrapolation). One draw per (task, device model), as truth.py's
  noise: every policy meets the same realisation and identical devices behave alike. The draws
  are taken device model by device model (Cluster.model_groups order), and within a model kernel
  by kernel in the order of the workload's category names, each over its tasks in task order,
  from one Generator: `KERNEL_TIME_STREAM` of the run's seed (knowledge.py). Same spec and seed,
  same times, bit for bit.
- **staging**: the task's input M_i MB moved from host memory to a GPU, latency + M_i / bandwidth
  (costs.transfer_time; 0 on a CPU core), and edges between devices as costs.py says, over the
  profile's measured host -> GPU link when it has one (`measured_cluster`), otherwise over the
  cluster's nominal link (cluster.py), which is then a datasheet figure, not a measurement. The
  simulator has one link per device, so a measured GPU -> host link is not used (yet).

Nothing else is added: a measured kernel time already contains whatever memory traffic and
inefficiency the kernel had on that machine; no efficiency or noise is invented on top.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from app.sim import costs
from app.sim.cluster import Cluster, DeviceKind
from app.sim.profile import NotInProfile, Profile
from app.sim.workload import Workload

#: The random stream of the run's seed that draws the measured kernel times.
KERNEL_TIME_STREAM = zlib.crc32(b"kernel-times")

#: The profile's name of each kind of device.
DEVICE_NAMES = {DeviceKind.CPU: "cpu", DeviceKind.GPU: "gpu"}

#: Profiles measure in bytes per second, clusters in MB per second.
BYTES_PER_MB = 1e6


class NoKernels(ValueError):
    """The workload's tasks do not name the tile sizes of a profile's kernels."""


def tile_sizes(workload: Workload) -> np.ndarray:
    """Each task's tile size; `NoKernels` if the workload has none (its tasks call no kernel)."""
    if workload.tile_size is None:
        raise NoKernels("the workload's tasks call no profiled kernel (no tile sizes)")
    return workload.tile_size


def used(workload: Workload) -> list[tuple[str, np.ndarray]]:
    """(kernel, the tasks that call it) for each kernel some task calls, in category order."""
    calls = []
    for code, kernel in enumerate(workload.category_names):
        tasks = np.flatnonzero(workload.category == code)
        if tasks.size:
            calls.append((kernel, tasks))
    return calls


def device_kinds(cluster: Cluster) -> list[str]:
    """The profile's names of the kinds of device the cluster has."""
    return [DEVICE_NAMES[kind] for kind in DeviceKind if np.any(cluster.kind == kind)]


def kernel_calls(workload: Workload) -> tuple[tuple[str, ...], np.ndarray]:
    """The kernels some task calls, in category order, and each task's index among them."""
    codes, calls = np.unique(workload.category, return_inverse=True)
    return tuple(workload.category_names[code] for code in codes), calls.reshape(-1)


def check_covered(workload: Workload, cluster: Cluster, profile: Profile) -> None:
    """Raise `NotInProfile` unless the profile times every kernel the tasks call, at their tile
    sizes, on every kind of device of the cluster."""
    tiles = tile_sizes(workload).astype(np.float64)
    kernels, calls = kernel_calls(workload)
    for device in device_kinds(cluster):
        profile.times_of_calls(kernels, calls, tiles, device)


def kernel_times(
    workload: Workload, cluster: Cluster, profile: Profile, rng: np.random.Generator | None
) -> np.ndarray:
    """The drawn kernel times, seconds, shape (num_tasks, num_devices) (module docstring); with
    no `rng`, the measured mean times instead of draws (what the offered load is computed on).
    Each device model's column is one pass over all tasks (Profile.draws_of_calls), which takes
    its normals in the stream order the module docstring states."""
    tiles = tile_sizes(workload).astype(np.float64)
    kernels, calls = kernel_calls(workload)
    times = np.empty((workload.num_tasks, cluster.num_devices))
    for group in cluster.model_groups(np.arange(cluster.num_devices)):
        device = DEVICE_NAMES[DeviceKind(int(cluster.kind[group[0]]))]
        if rng is None:
            column = profile.times_of_calls(kernels, calls, tiles, device)
        else:
            column = profile.draws_of_calls(kernels, calls, tiles, device, rng)
        times[:, group] = column[:, None]
    return times


def measured_cluster(cluster: Cluster, profile: Profile) -> Cluster:
    """The cluster as the profile measured its links: the GPUs' latency and bandwidth from the
    profile's cpu -> gpu link when it has one; otherwise the cluster unchanged (nominal links)."""
    try:
        link = profile.link(DEVICE_NAMES[DeviceKind.CPU], DEVICE_NAMES[DeviceKind.GPU])
    except NotInProfile:
        return cluster
    gpu = cluster.kind == DeviceKind.GPU
    return replace(
        cluster,
        latency=np.where(gpu, link.latency_s, cluster.latency),
        bandwidth=np.where(gpu, link.bandwidth_bytes_per_s / BYTES_PER_MB, cluster.bandwidth),
    )


def true_execution_time(
    workload: Workload, cluster: Cluster, profile: Profile, rng: np.random.Generator | None
) -> np.ndarray:
    """truth(i, d), seconds, shape (num_tasks, num_devices); `cluster` as `measured_cluster`
    returns it (its links are the ones staging is charged on). With no `rng`, the mean of the
    truth's distribution (measured means + staging) instead of a draw."""
    staging = costs.transfer_time(workload, cluster)
    return kernel_times(workload, cluster, profile, rng) + staging
