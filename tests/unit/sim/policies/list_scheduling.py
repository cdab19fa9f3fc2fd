"""A plain-Python list scheduler, independent of the engine, for cross-checking the DAG
heuristics (PEFT, CPOP, lookahead): released tasks taken by priority, each placed whole on the
device a heuristic chooses from every fitting device's insertion-based earliest finish.

Static DAGs only (all arrivals 0); the transfers are the cost model's (costs.edge_transfer) or
the explicit edge costs. Lists and loops, no numpy arrays in the algorithm, no code of app/sim's
engine or policies."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.sim import costs
from app.sim.engine import simulate
from app.sim.invariants import violations
from app.sim.policies import make_policy
from app.sim.problem import Problem
from app.sim.schedule import Schedule

#: (task, [(device, finish), ...] over the devices it fits) -> the chosen device.
Choose = Callable[[int, list[tuple[int, float]]], int]


@dataclass
class Graph:
    """The problem as plain lists: times[t][d] (None where t does not fit d), children and
    parents as (task, edge) pairs."""

    times: list[list[float | None]]
    children: list[list[tuple[int, int]]] = field(default_factory=list)
    parents: list[list[tuple[int, int]]] = field(default_factory=list)

    @classmethod
    def of(cls, problem: Problem) -> Graph:
        n, m = problem.num_tasks, problem.num_devices
        times = [
            [float(problem.exec_time[t, d]) if problem.feasible[t, d] else None for d in range(m)]
            for t in range(n)
        ]
        graph = cls(times, [[] for _ in range(n)], [[] for _ in range(n)])
        ptr, idx = problem.workload.parent_ptr.tolist(), problem.workload.parent_idx.tolist()
        for child in range(n):
            for edge in range(ptr[child], ptr[child + 1]):
                graph.parents[child].append((idx[edge], edge))
                graph.children[idx[edge]].append((child, edge))
        return graph

    def reverse_topological(self) -> list[int]:
        order, seen = [], set()

        def visit(task: int) -> None:  # depth-first: children before their parent
            if task in seen:
                return
            seen.add(task)
            for child, _ in self.children[task]:
                visit(child)
            order.append(task)

        for task in range(len(self.times)):
            visit(task)
        return order


def transfer(problem: Problem, edge: int, source: int, target: int) -> float:
    return Transfers(problem)(edge, source)[target]


class Transfers:
    """costs.edge_transfer as lists, computed once per (edge, source device): a reference that
    asks for the same transfer per candidate device would otherwise spend its time in numpy."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self._known: dict[tuple[int, int], list[float]] = {}

    def __call__(self, edge: int, source: int) -> list[float]:
        """Seconds from `source` to every device."""
        key = (edge, source)
        if key not in self._known:
            problem = self.problem
            explicit = problem.workload.edge_cost
            cost = None if explicit is None else float(explicit[edge])
            data = float(problem.workload.edge_data[edge])
            self._known[key] = costs.edge_transfer(problem.cluster, data, cost, source).tolist()
        return self._known[key]


def mean_transfer(problem: Problem, edge: int) -> float:
    """The edge's mean transfer time over ordered pairs of distinct devices."""
    m = problem.num_devices
    pairs = [transfer(problem, edge, a, b) for a in range(m) for b in range(m) if a != b]
    return sum(pairs) / len(pairs) if pairs else 0.0


def earliest_start(busy: list[tuple[float, float]], ready: float, duration: float) -> float:
    """The first idle gap of `busy` (sorted intervals) from `ready` that holds `duration`."""
    candidate = ready
    # The intervals do not overlap, so their ends are sorted too: skip those over by `ready`.
    for k in range(bisect.bisect_right(busy, ready, key=lambda interval: interval[1]), len(busy)):
        begin, end = busy[k]
        if candidate + duration <= begin:
            return candidate
        candidate = max(candidate, end)
    return candidate


@dataclass
class Placed:
    """The schedule so far: device (-1: not yet placed), start and end per task, and each
    device's busy intervals, sorted."""

    device: list[int]
    start: list[float]
    end: list[float]
    busy: list[list[tuple[float, float]]]

    @classmethod
    def empty(cls, problem: Problem) -> Placed:
        n, m = problem.num_tasks, problem.num_devices
        return cls([-1] * n, [0.0] * n, [0.0] * n, [[] for _ in range(m)])


def list_schedule(
    problem: Problem, priority: list[float], choose: Choose, placed: Placed | None = None
) -> tuple[list[int], list[float], list[float]]:
    """(device, start, end) per task. `placed`, if given, is the state the schedule is built in
    (a `choose` that needs the schedule so far reads it)."""
    graph = Graph.of(problem)
    n, m = problem.num_tasks, problem.num_devices
    placed = placed or Placed.empty(problem)
    device, start, end, busy = placed.device, placed.start, placed.end, placed.busy
    transfers = Transfers(problem)
    waiting = [len(graph.parents[t]) for t in range(n)]
    released = [t for t in range(n) if waiting[t] == 0]
    while released:
        # Highest priority first, then the lower index.
        task = min(released, key=lambda t: (-priority[t], t))
        released.remove(task)
        begins, options = {}, []
        for d in range(m):
            duration = graph.times[task][d]
            if duration is None:
                continue
            ready = 0.0
            for parent, edge in graph.parents[task]:
                ready = max(ready, end[parent] + transfers(edge, device[parent])[d])
            begins[d] = earliest_start(busy[d], ready, duration)
            options.append((d, begins[d] + duration))
        chosen = choose(task, options)
        finish = dict(options)[chosen]
        device[task], start[task], end[task] = chosen, begins[chosen], finish
        bisect.insort(busy[chosen], (begins[chosen], finish))
        for child, _ in graph.children[task]:
            waiting[child] -= 1
            if waiting[child] == 0:
                released.append(child)
    return device, start, end


def schedule_of(problem: Problem, name: str) -> Schedule:
    """The engine's schedule of `problem` under policy `name`, checked against the invariants."""
    schedule = simulate(problem, make_policy(name), np.random.default_rng(0))
    assert violations(problem, schedule) == []
    return schedule
