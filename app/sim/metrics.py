"""What a leaderboard shows about a schedule.

makespan (s): end of the last task, the simulation starting at 0.
flow time (s): end - arrival of each task, the time it spends in the system; mean and 95th
  percentile.
energy (J): per device, busy time x busy power + (makespan - busy time) x idle power, summed.
cost: the whole cluster rented for the makespan, at each device's price per hour.
utilization: busy time / makespan per device, and its mean over devices.
SLR (schedule length ratio): makespan / the critical path's length when every task takes its
  fastest possible time (whole or split) and no data moves. No schedule can beat that path, so
  SLR >= 1.
mean slowdown: the mean over tasks of flow time / the task's fastest possible time (whole or
  split, on the true times), each ratio at least 1 (tasks of zero cost are left out; None if all
  are).
lower bound (s): a makespan no schedule can beat (bounds.py); gap to bound = (makespan - bound) /
  bound.
speedup: the best single-device sequential time (the device whose total time over all tasks is
  least; if no device fits every task, each task's fastest device) / makespan. On identical
  devices it cannot exceed their number; on heterogeneous ones it can, because each kind of device
  is far faster for some tasks (the bound is the number of devices x the heterogeneity factor,
  `sequential time / sum of each task's fastest time`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.sim.bounds import makespan_lower_bound
from app.sim.problem import Problem
from app.sim.schedule import Schedule


@dataclass(frozen=True)
class Metrics:
    makespan: float
    mean_flow_time: float
    p95_flow_time: float
    energy: float
    cost: float
    mean_utilization: float
    utilization: dict[str, float]  # per device name (cpu0, ..., gpu0, ...)
    slr: float | None  # None when undefined (a workload of zero-cost tasks)
    speedup: float | None
    mean_slowdown: float | None
    lower_bound: float
    gap_to_bound: float | None  # None when the bound is 0

    def value(self, metric: str) -> float:
        """The value of one of the rank metrics (ranking.py)."""
        value = getattr(self, metric)
        return float("inf") if value is None else float(value)


def summarize(problem: Problem, schedule: Schedule, lower_bound: float | None = None) -> Metrics:
    """The metrics of `schedule` on `problem`, whose times are the truth; `lower_bound` is
    bounds.makespan_lower_bound(problem), computed here unless the caller has it."""
    cluster = problem.cluster
    makespan = float(schedule.end.max()) if schedule.num_tasks else 0.0
    busy = schedule.busy_time(cluster.num_devices)
    utilization = busy / makespan if makespan > 0 else np.zeros_like(busy)
    energy = float(np.sum(busy * cluster.power_busy + (makespan - busy) * cluster.power_idle))
    flow = schedule.end - problem.workload.arrival
    bound = makespan_lower_bound(problem) if lower_bound is None else lower_bound
    return Metrics(
        makespan=makespan,
        mean_flow_time=float(np.mean(flow)),
        p95_flow_time=float(np.percentile(flow, 95)),
        energy=energy,
        cost=float(cluster.price.sum() * makespan / 3600.0),
        mean_utilization=float(utilization.mean()),
        utilization=dict(zip(cluster.names(), map(float, utilization), strict=True)),
        slr=_ratio(makespan, critical_path_length(problem)),
        speedup=_ratio(sequential_time(problem), makespan),
        mean_slowdown=mean_slowdown(problem, flow),
        lower_bound=bound,
        gap_to_bound=None if bound <= 0 else (makespan - bound) / bound,
    )


def mean_slowdown(problem: Problem, flow: np.ndarray) -> float | None:
    fastest = problem.min_time
    costly = fastest > 0
    if not costly.any():
        return None
    return float(np.mean(np.maximum(flow[costly] / fastest[costly], 1.0)))


def critical_path_length(problem: Problem) -> float:
    """The longest dependency chain, each task at its fastest possible time, no transfers (s)."""
    workload = problem.workload
    fastest = problem.min_time
    if not workload.has_dependencies:
        return float(fastest.max()) if fastest.size else 0.0
    finish = np.zeros(problem.num_tasks)
    for task in workload.topological_order.tolist():
        parents = workload.parents(task)
        finish[task] = fastest[task] + (float(finish[parents].max()) if parents.size else 0.0)
    return float(finish.max())


def sequential_time(problem: Problem) -> float:
    """All tasks one after another on the best single device (s); see the module docstring."""
    fits_all = problem.feasible.all(axis=0)
    if fits_all.any():
        return float(problem.exec_time[:, fits_all].sum(axis=0).min())
    return float(np.where(problem.feasible, problem.exec_time, np.inf).min(axis=1).sum())


def heterogeneity_factor(problem: Problem) -> float | None:
    """sequential_time / the sum of each task's fastest time: 1 on identical devices."""
    return _ratio(sequential_time(problem), float(problem.min_time.sum()))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None
