"""What a leaderboard shows about a schedule.

makespan (s): end of the last task, the simulation starting at 0.
mean flow time (s): mean of (end - arrival), the time a task spends in the system.
energy (J): busy time x busy power + (makespan - busy time) x idle power, over all devices.
cost: the whole cluster rented for the makespan, at each device's price per hour.
utilization: busy time / makespan per device, and its mean over devices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.sim.problem import Problem
from app.sim.schedule import Schedule


@dataclass(frozen=True)
class Metrics:
    makespan: float
    mean_flow_time: float
    energy: float
    cost: float
    mean_utilization: float
    utilization: dict[str, float]  # per device name (cpu0, ..., gpu0, ...)


def summarize(problem: Problem, schedule: Schedule) -> Metrics:
    cluster = problem.cluster
    makespan = float(schedule.end.max()) if schedule.num_tasks else 0.0
    busy = np.bincount(
        schedule.device, weights=schedule.end - schedule.start, minlength=cluster.num_devices
    )
    utilization = busy / makespan if makespan > 0 else np.zeros_like(busy)
    energy = float(np.sum(busy * cluster.power_busy + (makespan - busy) * cluster.power_idle))
    return Metrics(
        makespan=makespan,
        mean_flow_time=float(np.mean(schedule.end - problem.workload.arrival)),
        energy=energy,
        cost=float(cluster.price.sum() * makespan / 3600.0),
        mean_utilization=float(utilization.mean()),
        utilization=dict(zip(cluster.names(), map(float, utilization), strict=True)),
    )
