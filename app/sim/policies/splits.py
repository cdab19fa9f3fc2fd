"""Split tables for the policies that split a task over a GPU and a CPU core.

What a split costs depends only on the task and the two device models, so each task's best share
and its time are computed for all tasks at once, per pair of device models. At placement the
engine takes, for each pair, the earliest available GPU and core of those models (no other device
of a model can do better) and considers the split only if both are idle when the task's data is
ready: a split holds two devices for its whole time, so under load it delays the work queued
behind it more than it speeds the task up; on idle devices it turns spare capacity into a shorter
task.
"""

from __future__ import annotations

import numpy as np

from app.sim import costs
from app.sim.decision import SplitTables
from app.sim.problem import Problem


def split_tables(
    problem: Problem, exec_time: np.ndarray, grid: np.ndarray | None = None
) -> SplitTables | None:
    """Best shares under `exec_time` (true or estimated seconds, (tasks, devices)): each pair's
    f* and, if given, every share in `grid`, within what fits both memories. None when the
    problem cannot split (explicit costs, or a single kind of device)."""
    if not problem.splittable:
        return None
    cluster = problem.cluster
    gpu_groups = cluster.model_groups(cluster.gpus)
    cpu_groups = cluster.model_groups(cluster.cpus)
    groups = gpu_groups + cpu_groups
    pairs = [
        (g, len(gpu_groups) + c) for g in range(len(gpu_groups)) for c in range(len(cpu_groups))
    ]
    shares, times = [], []
    for gpu_group, cpu_group in pairs:
        gpu, cpu = int(groups[gpu_group][0]), int(groups[cpu_group][0])
        share, time = _best_shares(problem, exec_time, gpu, cpu, grid)
        shares.append(share)
        times.append(time)
    return SplitTables(
        group_ptr=np.cumsum([0] + [len(group) for group in groups]),
        group_devices=np.concatenate(groups),
        pair_gpu_group=np.array([g for g, _ in pairs]),
        pair_cpu_group=np.array([c for _, c in pairs]),
        share=np.array(shares),
        time=np.array(times),
    )


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
