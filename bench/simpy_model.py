"""The engine's model for `round_robin` and `eft`, rebuilt on SimPy: the peer bench/sim.py times
our engine against, and an independent check of the engine's semantics.

A dispatcher process decides placements one released task at a time (released: arrived, all
parents placed), in order of (arrival, index), at the task's arrival, and appends the task to its
device's FIFO queue (a `simpy.Store`). One process per device takes its tasks in that order, waits
for their inputs, and runs each for its execution time. Inputs are events: per parent edge, a
delivery that fires the edge's transfer time after the parent ends.

The dispatcher plans with its own bookkeeping (where each task goes, when it should end, when each
device's queue drains); SimPy then executes the plan, and `simulate` raises `PlanNotExecuted` if
any executed start or end differs from the planned one.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import simpy
from simpy.events import ProcessGenerator

from app.sim import costs
from app.sim.problem import Problem

#: Relative tolerance between planned and executed times: SimPy reaches an absolute time as
#: now + (target - now), which may round differently from the plan's target by an ulp.
PLAN_TOLERANCE = 1e-12


class PlanNotExecuted(RuntimeError):
    """SimPy executed a different schedule than the dispatcher planned."""


@dataclass(frozen=True)
class Execution:
    """Per task: the device SimPy ran it on and when it started and ended (s)."""

    device: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def makespan(self) -> float:
        return float(self.end.max()) if self.end.size else 0.0


class Plan:
    """The dispatcher's view: planned device, start and end of each task, and when each device
    finishes the work queued on it (s)."""

    def __init__(self, problem: Problem) -> None:
        n, m = problem.num_tasks, problem.num_devices
        self.problem = problem
        self.device = np.full(n, -1, dtype=np.int64)
        self.start = np.zeros(n)
        self.end = np.zeros(n)
        self.free_at = np.zeros(m)
        self.next_device = 0  # round robin's turn
        workload = problem.workload
        self.arrival = workload.arrival.tolist()  # s, as floats for speed
        self._parent_ptr = workload.parent_ptr.tolist()
        self._parent_idx = workload.parent_idx.tolist()
        self._edge_data = workload.edge_data.tolist()
        self._edge_cost = None if workload.edge_cost is None else workload.edge_cost.tolist()

    def inputs(self, task: int) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """When the task's data could be on each device, and per parent edge (parent, transfer
        seconds to each device)."""
        ready = np.full(self.problem.num_devices, self.arrival[task])
        edges = []
        for edge in range(self._parent_ptr[task], self._parent_ptr[task + 1]):
            parent = self._parent_idx[edge]
            explicit = None if self._edge_cost is None else self._edge_cost[edge]
            source = int(self.device[parent])
            transfer = costs.edge_transfer(
                self.problem.cluster, self._edge_data[edge], explicit, source
            )
            np.maximum(ready, self.end[parent] + transfer, out=ready)
            edges.append((parent, transfer))
        return ready, edges

    def commit(self, task: int, device: int, ready: np.ndarray) -> None:
        begin = max(float(ready[device]), float(self.free_at[device]))
        finish = begin + float(self.problem.exec_time[task, device])
        self.device[task], self.start[task], self.end[task] = device, begin, finish
        self.free_at[device] = finish


def place_round_robin(plan: Plan, task: int, ready: np.ndarray) -> int:
    """Devices in turn, skipping those the task does not fit on."""
    feasible = plan.problem.feasible[task]
    device = plan.next_device
    while not feasible[device]:
        device = (device + 1) % feasible.shape[0]
    plan.next_device = (device + 1) % feasible.shape[0]
    return device


def place_eft(plan: Plan, task: int, ready: np.ndarray) -> int:
    """The device where the task would finish first, after that device's queue."""
    finish = np.maximum(ready, plan.free_at) + plan.problem.exec_time[task]
    finish[~plan.problem.feasible[task]] = np.inf
    return int(np.argmin(finish))


Placer = Callable[[Plan, int, np.ndarray], int]
PLACERS: dict[str, Placer] = {"round_robin": place_round_robin, "eft": place_eft}


def simulate(problem: Problem, policy: str) -> Execution:
    """Run the workload through SimPy with `policy` ("round_robin" or "eft")."""
    env = simpy.Environment()
    plan = Plan(problem)
    queues = [simpy.Store(env) for _ in range(problem.num_devices)]
    executed = Execution(plan.device, np.zeros(problem.num_tasks), np.zeros(problem.num_tasks))
    child_ptr = problem.workload.children[0]
    has_children = (np.diff(child_ptr) > 0).tolist()
    finished: dict[int, simpy.Event] = {}  # per task with children: fires with its end time
    for device, queue in enumerate(queues):
        env.process(_run_device(env, problem, device, queue, executed, finished))

    def dispatch() -> ProcessGenerator:
        for task in release_order(problem):
            arrival = plan.arrival[task]
            if arrival > env.now:
                yield env.timeout(arrival - env.now)
            ready, edges = plan.inputs(task)
            device = PLACERS[policy](plan, task, ready)
            plan.commit(task, device, ready)
            if has_children[task]:
                finished[task] = env.event()
            deliveries = [
                env.process(_deliver(env, finished[parent], float(transfer[device])))
                for parent, transfer in edges
            ]
            yield queues[device].put((task, env.all_of(deliveries) if deliveries else None))

    env.process(dispatch())
    env.run()
    _check_executed(plan, executed)
    return executed


def release_order(problem: Problem) -> Iterator[int]:
    """Released tasks by (arrival, index); placing a task (before the next is asked for) may
    release its children."""
    workload = problem.workload
    arrival = workload.arrival.tolist()
    if not workload.has_dependencies:
        yield from np.argsort(workload.arrival, kind="stable").tolist()
        return
    pending = np.diff(workload.parent_ptr).tolist()
    child_ptr, child_idx, _ = (array.tolist() for array in workload.children)
    released = [(arrival[task], task) for task, count in enumerate(pending) if count == 0]
    heapq.heapify(released)
    while released:
        task = heapq.heappop(released)[1]
        yield task
        for child in child_idx[child_ptr[task] : child_ptr[task + 1]]:
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(released, (arrival[child], child))


def _run_device(
    env: simpy.Environment,
    problem: Problem,
    device: int,
    queue: simpy.Store,
    executed: Execution,
    finished: dict[int, simpy.Event],
) -> ProcessGenerator:
    """Run the device's queue in placement order, one task at a time."""
    exec_time = problem.exec_time[:, device].tolist()
    while True:
        task, inputs = yield queue.get()
        if inputs is not None:
            yield inputs
        executed.start[task] = env.now
        yield env.timeout(exec_time[task])
        executed.end[task] = env.now
        if task in finished:
            finished[task].succeed(env.now)


def _deliver(
    env: simpy.Environment, parent_finished: simpy.Event, transfer: float
) -> ProcessGenerator:
    """One edge's data: on the child's device `transfer` seconds after the parent ends."""
    parent_end = yield parent_finished
    if parent_end + transfer > env.now:
        yield env.timeout(parent_end + transfer - env.now)


def _check_executed(plan: Plan, executed: Execution) -> None:
    for name in ("start", "end"):
        planned, actual = getattr(plan, name), getattr(executed, name)
        if not np.allclose(actual, planned, rtol=PLAN_TOLERANCE, atol=0.0):
            task = int(np.argmax(np.abs(actual - planned)))
            at, due = float(actual[task]), float(planned[task])
            raise PlanNotExecuted(f"task {task} {name}s at {at!r} s, planned at {due!r} s")
