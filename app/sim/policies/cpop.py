from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import TOPCUOGLU_2002
from app.sim.problem import Problem
from app.sim.ranks import downward_rank, upward_rank

#: Relative tolerance for "priority equals the critical path's length" (sums of floats).
ON_PATH_TOLERANCE = 1e-9


def critical_path(problem: Problem, priority: np.ndarray) -> np.ndarray:
    """The tasks of one critical path, entry to exit: from the entry task of largest priority
    |CP| (with one entry task, the paper's case: that task), each step to the first child whose
    priority equals |CP| (rank_u + rank_d is the longest path through a task, so one exists)."""
    workload = problem.workload
    length = float(priority.max())
    on_path = np.isclose(priority, length, rtol=ON_PATH_TOLERANCE, atol=0.0)
    entries = np.flatnonzero(np.diff(workload.parent_ptr) == 0)
    task = int(entries[np.argmax(priority[entries])])
    path = [task]
    child_ptr, child_idx, _ = workload.children
    while True:
        children = child_idx[child_ptr[task] : child_ptr[task + 1]]
        children = children[on_path[children]]
        if children.size == 0:
            return np.array(path)
        task = int(children[0])
        path.append(task)


def critical_path_device(problem: Problem, path: np.ndarray) -> int | None:
    """The device that runs the whole critical path fastest (the least sum of its tasks' times,
    lower index on ties), among those every task of it fits; None if no device fits them all."""
    times = np.where(problem.feasible[path], problem.exec_time[path], np.inf).sum(axis=0)
    device = int(np.argmin(times))
    return device if np.isfinite(times[device]) else None


class Cpop(Policy):
    """Critical Path on a Processor (Topcuoglu, Hariri & Wu, "Performance-effective and
    low-complexity task scheduling for heterogeneous computing", IEEE TPDS 13(3), 2002, the paper
    of HEFT): priority = rank_u + rank_d, the length of the longest path through the task; the
    critical path (from the entry task, tasks whose priority equals the entry's) all goes to the
    one device that runs it fastest, every other task to its earliest-finish device,
    insertion-based, released tasks taken by priority. The ranks and the path are computed up
    front from the whole graph on the times the policy believes. With online arrivals the engine
    decides each task at release (arrival first, priority among tasks released together), so
    CPOP is EFT at arrival with the critical path's tasks pinned to its device; on independent
    tasks the critical path is the one task of largest mean time, on its fastest device."""

    name = "cpop"
    paper = TOPCUOGLU_2002
    summary = "CPOP: rank_u + rank_d order, critical path on one device, the rest by EFT"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        priority = upward_rank(problem) + downward_rank(problem)
        if problem.num_tasks == 0:
            return Decision(Rule.EFT, insertion=True)
        path = critical_path(problem, priority)
        device = critical_path_device(problem, path)
        bias = None
        if device is not None:
            bias = np.zeros((problem.num_tasks, problem.num_devices))
            bias[path] = np.inf
            bias[path, device] = 0.0
        return Decision(Rule.EFT, insertion=True, priority=priority, bias=bias)
