"""A workload bound to a cluster and one table of execution times.

Whose times they are depends on who holds it (knowledge.py): the engine executes on a problem
holding the true times (knowledge.py); a policy decides on a problem holding what it believes (the
nominal cost model's estimates, costs.py, unless it may see the truth).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from app.sim import costs
from app.sim.cluster import Cluster
from app.sim.workload import Workload


class Infeasible(ValueError):
    """Some task cannot run anywhere on this cluster."""


@dataclass(frozen=True)
class BestSplits:
    """Per task, the best CPU/GPU split over all device pairs (inf where none fits)."""

    time: np.ndarray
    gpu: np.ndarray
    cpu: np.ndarray
    fraction: np.ndarray


@dataclass(frozen=True)
class Problem:
    workload: Workload
    cluster: Cluster
    exec_time: np.ndarray  # E(i, d) seconds, (num_tasks, num_devices)
    feasible: np.ndarray  # bool, (num_tasks, num_devices): the task's data fits the device

    @classmethod
    def build(
        cls, workload: Workload, cluster: Cluster, exec_time: np.ndarray | None = None
    ) -> Problem:
        """`exec_time` defaults to the nominal cost model (costs.execution_time)."""
        if exec_time is None:
            exec_time = costs.execution_time(workload, cluster)
        feasible = costs.fits(workload, cluster)
        nowhere = np.flatnonzero(~feasible.any(axis=1))
        if nowhere.size:
            task = int(nowhere[0])
            raise Infeasible(
                f"{nowhere.size} task(s) fit on no device, e.g. task {task} needs "
                f"{workload.memory[task]:.0f} MB and the largest device has "
                f"{cluster.memory.max():.0f} MB"
            )
        return cls(workload, cluster, exec_time, feasible)

    def with_times(self, exec_time: np.ndarray) -> Problem:
        """The same tasks and devices under other execution times (seconds, (tasks, devices))."""
        if exec_time.shape != self.exec_time.shape:
            raise ValueError(f"times of shape {exec_time.shape}, expected {self.exec_time.shape}")
        return Problem(self.workload, self.cluster, exec_time, self.feasible)

    @property
    def num_tasks(self) -> int:
        return self.workload.num_tasks

    @property
    def num_devices(self) -> int:
        return self.cluster.num_devices

    @property
    def splittable(self) -> bool:
        """Splits need the cost model (not explicit costs) and both kinds of device."""
        return (
            not self.workload.explicit and self.cluster.cpus.size > 0 and self.cluster.gpus.size > 0
        )

    def split_bounds(self, gpu: int, cpu: int) -> tuple[np.ndarray, np.ndarray]:
        """Per task, the GPU shares that fit both devices' memory."""
        return costs.fraction_bounds(
            self.workload.memory, float(self.cluster.memory[cpu]), float(self.cluster.memory[gpu])
        )

    @cached_property
    def best_splits(self) -> BestSplits:
        n = self.num_tasks
        best = BestSplits(np.full(n, np.inf), np.full(n, -1), np.full(n, -1), np.zeros(n))
        if not self.splittable:
            return best
        for gpus in self.cluster.model_groups(self.cluster.gpus):
            for cpus in self.cluster.model_groups(self.cluster.cpus):
                gpu, cpu = int(gpus[0]), int(cpus[0])
                low, high = self.split_bounds(gpu, cpu)
                cpu_time, gpu_time = self.exec_time[:, cpu], self.exec_time[:, gpu]
                latency = float(self.cluster.latency[gpu])
                fraction = costs.best_fraction(cpu_time, gpu_time, latency, low, high)
                time = np.where(
                    low <= high, costs.split_time(cpu_time, gpu_time, latency, fraction), np.inf
                )
                better = time < best.time
                best.time[better], best.fraction[better] = time[better], fraction[better]
                best.gpu[better], best.cpu[better] = gpu, cpu
        return best

    @cached_property
    def min_time(self) -> np.ndarray:
        """The fastest any placement can run each task (whole device or split), seconds."""
        whole = np.where(self.feasible, self.exec_time, np.inf).min(axis=1)
        return np.minimum(whole, self.best_splits.time)
