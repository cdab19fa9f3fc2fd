"""The cost model: how long a task takes on a device.

For task i (size S_i GFLOP, data-parallel share p_i, input data M_i MB) on device d
(parallel rate R_d, scalar rate r_d GFLOP/s, host link bandwidth B_d MB/s, latency L_d s):

    compute(i, d)  = S_i * (p_i / R_d + (1 - p_i) / r_d)
    transfer(i, d) = L_d + M_i / B_d          (0 on a CPU core: it reads host memory)
    time(i, d)     = compute(i, d) + transfer(i, d)

A CPU core has R = r, so only its speed matters; a GPU has R >> r, so it wins only for tasks
with a high data-parallel share and little data to move.
"""

from __future__ import annotations

import numpy as np

from app.sim.cluster import Cluster
from app.sim.workload import Workload


def compute_time(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Seconds of pure computation, shape (num_tasks, num_devices)."""
    parallel = workload.intensity[:, None] / cluster.speed[None, :]
    serial = (1.0 - workload.intensity)[:, None] / cluster.scalar_speed[None, :]
    return workload.size[:, None] * (parallel + serial)


def transfer_time(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Seconds to move each task's input data to each device, shape (num_tasks, num_devices)."""
    return cluster.latency[None, :] + workload.memory[:, None] / cluster.bandwidth[None, :]


def execution_time(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Seconds from start to finish of each task on each device, shape (num_tasks, num_devices)."""
    return compute_time(workload, cluster) + transfer_time(workload, cluster)


def fits(workload: Workload, cluster: Cluster) -> np.ndarray:
    """Whether each task's data fits in each device's memory, shape (num_tasks, num_devices)."""
    return workload.memory[:, None] <= cluster.memory[None, :]
