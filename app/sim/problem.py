"""A workload bound to a cluster: the cost tables every policy and the engine read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.sim import costs
from app.sim.cluster import Cluster
from app.sim.workload import Workload


class Infeasible(ValueError):
    """Some task cannot run anywhere on this cluster."""


@dataclass(frozen=True)
class Problem:
    workload: Workload
    cluster: Cluster
    exec_time: np.ndarray  # seconds, (num_tasks, num_devices)
    feasible: np.ndarray  # bool, (num_tasks, num_devices): the task's data fits the device

    @classmethod
    def build(cls, workload: Workload, cluster: Cluster) -> Problem:
        feasible = costs.fits(workload, cluster)
        nowhere = np.flatnonzero(~feasible.any(axis=1))
        if nowhere.size:
            task = int(nowhere[0])
            raise Infeasible(
                f"{nowhere.size} task(s) fit on no device, e.g. task {task} needs "
                f"{workload.memory[task]:.0f} MB and the largest device has "
                f"{cluster.memory.max():.0f} MB"
            )
        return cls(workload, cluster, costs.execution_time(workload, cluster), feasible)

    @property
    def num_tasks(self) -> int:
        return self.workload.num_tasks

    @property
    def num_devices(self) -> int:
        return self.cluster.num_devices
