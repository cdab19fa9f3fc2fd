"""Choosing a CPU/GPU split for a task, shared by the policies that split.

What a split costs depends only on the task and the two device models, so the best share and its
time are computed for all tasks at once when the search is built; placing a task then only asks
when the devices are free.
"""

from __future__ import annotations

import numpy as np

from app.sim import costs
from app.sim.engine import Engine, Split
from app.sim.problem import Problem


class SplitSearch:
    """Per pair of device models: each task's best share f (the pair's f* and, if given, every
    share in `grid`, within what fits both memories) and its time under `exec_time` (true or
    estimated seconds, (num_tasks, num_devices)). At placement, the earliest available GPU and
    CPU core of each model (no other device of the model can do better)."""

    def __init__(
        self,
        problem: Problem,
        engine: Engine,
        exec_time: np.ndarray,
        grid: np.ndarray | None = None,
    ) -> None:
        self.engine = engine
        self._pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        if not problem.splittable:
            return
        cluster = problem.cluster
        for gpus in cluster.model_groups(cluster.gpus):
            for cpus in cluster.model_groups(cluster.cpus):
                share, time = _best_shares(problem, exec_time, int(gpus[0]), int(cpus[0]), grid)
                self._pairs.append((gpus, cpus, share, time))

    def best(self, task: int, ready: np.ndarray) -> tuple[Split | None, float]:
        """The best split of `task` over devices idle when its data is ready, and its estimated
        finish time (None, inf if there is none).

        Only idle devices: a split holds two devices for its whole time, so under load it
        delays the work queued behind it more than it speeds this task up; on idle devices it
        turns spare capacity into a shorter task."""
        best: Split | None = None
        best_finish = np.inf
        for gpus, cpus, share, time in self._pairs:
            if not np.isfinite(time[task]):
                continue
            gpu, cpu = self._earliest(gpus, ready), self._earliest(cpus, ready)
            start = self.engine.split_start(ready, gpu, cpu)
            if start > max(ready[gpu], ready[cpu]):
                continue  # one of the two is still busy with queued work
            finish = start + float(time[task])
            if finish < best_finish:
                best, best_finish = Split(gpu, cpu, float(share[task])), finish
        return best, best_finish

    def _earliest(self, devices: np.ndarray, ready: np.ndarray) -> int:
        if devices.size == 1:
            return int(devices[0])
        available = np.maximum(ready[devices], self.engine.free_at[devices])
        return int(devices[np.argmin(available)])


def _best_shares(
    problem: Problem, exec_time: np.ndarray, gpu: int, cpu: int, grid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per task, the best interior share and its split time (inf where no share fits)."""
    cpu_time, gpu_time = exec_time[:, cpu], exec_time[:, gpu]
    latency = float(problem.cluster.latency[gpu])
    low, high = problem.split_bounds(gpu, cpu)
    candidates = [costs.best_fraction(cpu_time, gpu_time, latency, low, high)]
    if grid is not None:
        candidates += [np.full_like(cpu_time, share) for share in grid]
    best_share = np.zeros_like(cpu_time)
    best_time = np.full_like(cpu_time, np.inf)
    for share in candidates:
        allowed = (share > 0) & (share < 1) & (share >= low) & (share <= high)
        time = np.where(allowed, costs.split_time(cpu_time, gpu_time, latency, share), np.inf)
        better = time < best_time
        best_share[better], best_time[better] = share[better], time[better]
    return best_share, best_time
