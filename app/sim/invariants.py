"""The schedule invariant checker: what every policy's output must satisfy.

- every task ran, for exactly the time the cost model gives its placement;
- no task started before it arrived, nor before each parent's output reached every device it
  used (parent's end + transfer);
- no device ran two tasks at once (a split holds both of its devices);
- no task ran where its data (its share of it, for a split) does not fit.
"""

from __future__ import annotations

import numpy as np

from app.sim import costs
from app.sim.problem import Problem
from app.sim.schedule import Schedule

TOLERANCE = 1e-9  # seconds, relative to the values compared


def violations(problem: Problem, schedule: Schedule, limit: int = 20) -> list[str]:
    """Human-readable violations, at most `limit` (empty: the schedule is valid)."""
    found: list[str] = []
    for check in (_placed, _durations, _arrivals, _dependencies, _memory, _overlaps):
        found.extend(check(problem, schedule))
        if len(found) >= limit:
            break
    return found[:limit]


def _close_or_after(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    return later >= earlier - TOLERANCE * np.maximum(1.0, np.abs(earlier))


def _placed(problem: Problem, schedule: Schedule) -> list[str]:
    missing = np.flatnonzero(schedule.device < 0)
    return [f"task {t} was never placed" for t in missing[:5].tolist()]


def _split_tasks(schedule: Schedule) -> np.ndarray:
    return np.flatnonzero(schedule.partner >= 0)


def _durations(problem: Problem, schedule: Schedule) -> list[str]:
    tasks = np.arange(schedule.num_tasks)
    expected = problem.exec_time[tasks, schedule.device].copy()
    split = _split_tasks(schedule)
    if split.size:
        gpu, cpu = schedule.device[split], schedule.partner[split]
        expected[split] = costs.split_time(
            problem.exec_time[split, cpu],
            problem.exec_time[split, gpu],
            problem.cluster.latency[gpu],
            schedule.gpu_fraction[split],
        )
    actual = schedule.end - schedule.start
    wrong = np.flatnonzero(~np.isclose(actual, expected, rtol=1e-9, atol=1e-12))
    return [
        f"task {t} ran {actual[t]:.6g} s, its placement costs {expected[t]:.6g} s"
        for t in wrong[:5].tolist()
    ]


def _arrivals(problem: Problem, schedule: Schedule) -> list[str]:
    early = np.flatnonzero(~_close_or_after(schedule.start, problem.workload.arrival))
    return [f"task {t} started before it arrived" for t in early[:5].tolist()]


def _dependencies(problem: Problem, schedule: Schedule) -> list[str]:
    workload = problem.workload
    found = []
    output = np.where(schedule.partner >= 0, schedule.partner, schedule.device)
    child_of_edge = np.repeat(np.arange(workload.num_tasks), np.diff(workload.parent_ptr))
    for edge, (parent, child) in enumerate(
        zip(workload.parent_idx.tolist(), child_of_edge.tolist(), strict=True)
    ):
        transfer = costs.edge_transfer(
            problem.cluster,
            float(workload.edge_data[edge]),
            None if workload.edge_cost is None else float(workload.edge_cost[edge]),
            int(output[parent]),
        )
        used = [int(schedule.device[child]), int(schedule.partner[child])]
        arrives = max(schedule.end[parent] + transfer[d] for d in used if d >= 0)
        if not _close_or_after(np.array([schedule.start[child]]), np.array([arrives]))[0]:
            found.append(
                f"task {child} started at {schedule.start[child]:.6g} s, before the data of "
                f"task {parent} arrived at {arrives:.6g} s"
            )
            if len(found) >= 5:
                break
    return found


def _memory(problem: Problem, schedule: Schedule) -> list[str]:
    memory, capacity = problem.workload.memory, problem.cluster.memory
    share = np.where(schedule.partner >= 0, schedule.gpu_fraction, 1.0)
    on_device = memory * share
    on_partner = memory * (1.0 - share)
    over = on_device > capacity[schedule.device] * (1 + 1e-12)
    split = schedule.partner >= 0
    over[split] |= on_partner[split] > capacity[schedule.partner[split]] * (1 + 1e-12)
    return [
        f"task {t} does not fit the memory of its device(s)"
        for t in np.flatnonzero(over)[:5].tolist()
    ]


def _overlaps(problem: Problem, schedule: Schedule) -> list[str]:
    found: list[str] = []
    for device in range(problem.num_devices):
        starts, ends = schedule.busy_intervals(device)
        clash = np.flatnonzero(~_close_or_after(starts[1:], ends[:-1]))
        found.extend(
            f"device {device} runs two tasks at once around t={starts[k + 1]:.6g} s"
            for k in clash[:3].tolist()
        )
    return found
