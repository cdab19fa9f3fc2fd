"""The event-driven engine every policy runs through.

Tasks arrive over time (their `arrival`); at each arrival the policy places the task on one
device, where it waits behind the work already queued there (each device runs one task at a
time, first come first served). A task never runs on a device its data does not fit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.sim.cluster import DeviceKind
from app.sim.policies.base import Policy
from app.sim.problem import Problem
from app.sim.schedule import Schedule

ProgressCallback = Callable[[float], None]

#: How many placements pass between two progress callbacks.
PROGRESS_EVERY = 4096


class PolicyError(RuntimeError):
    """A policy broke the engine's contract (e.g. chose a device the task does not fit on)."""


def simulate(
    problem: Problem,
    policy: Policy,
    rng: np.random.Generator,
    on_progress: ProgressCallback | None = None,
) -> Schedule:
    n = problem.num_tasks
    arrival = problem.workload.arrival
    exec_time = problem.exec_time
    feasible = problem.feasible
    device = np.empty(n, dtype=np.int32)
    start = np.empty(n, dtype=np.float64)
    end = np.empty(n, dtype=np.float64)
    free_at = np.zeros(problem.num_devices, dtype=np.float64)

    policy.prepare(problem, rng)
    for placed, task in enumerate(np.argsort(arrival, kind="stable").tolist()):
        ready = float(arrival[task])
        chosen = policy.place(task, ready, free_at)
        if not feasible[task, chosen]:
            raise PolicyError(f"{policy.name} placed task {task} on device {chosen}: does not fit")
        begin = max(ready, float(free_at[chosen]))
        finish = begin + float(exec_time[task, chosen])
        device[task], start[task], end[task] = chosen, begin, finish
        free_at[chosen] = finish
        if on_progress is not None and placed % PROGRESS_EVERY == 0:
            on_progress(placed / n)

    gpu_fraction = (problem.cluster.kind[device] == DeviceKind.GPU).astype(np.float64)
    if on_progress is not None:
        on_progress(1.0)
    return Schedule(device=device, start=start, end=end, gpu_fraction=gpu_fraction)
