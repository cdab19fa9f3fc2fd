"""The one event-driven engine every policy runs through.

A task is *released* when it has arrived (its `arrival`) and all its parents are placed. Released
tasks are decided one at a time in order of arrival, then of the policy's priority (HEFT's upward
rank; by default the task index): for a static DAG (all arrivals 0) that is list scheduling in
priority order, for online workloads it is dispatch at arrival. The policy sees, per device, when
the task's input data could be there (`ready`: its parents' end plus transfers, or its arrival)
and when the device is free, and answers with a device (the whole task) or a `Split` over a GPU
and a CPU core. The engine then fixes the true start and end from the cost model: a device runs
one task at a time, a task never starts before its data arrived, never runs where its data does
not fit, and (for policies that ask for `insertion`) may fill an idle gap left earlier on a device.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.sim import costs
from app.sim.cluster import DeviceKind
from app.sim.problem import Problem
from app.sim.schedule import Schedule

if TYPE_CHECKING:
    from app.sim.policies.base import Policy

ProgressCallback = Callable[[float], None]

#: How many placements pass between two progress callbacks.
PROGRESS_EVERY = 4096


class PolicyError(RuntimeError):
    """A policy broke the engine's contract (e.g. chose a device the task does not fit on)."""


@dataclass(frozen=True)
class Split:
    """Run `fraction` of the task on GPU `gpu` and the rest on CPU core `cpu`, concurrently."""

    gpu: int
    cpu: int
    fraction: float


Placement = int | Split


class Engine:
    """The state of one simulation. Policies read `free_at` and call the query methods."""

    def __init__(self, problem: Problem, insertion: bool) -> None:
        n, m = problem.num_tasks, problem.num_devices
        self.problem = problem
        self.insertion = insertion
        self.free_at = np.zeros(m)  # when each device finishes the work placed on it (s)
        self.device = np.full(n, -1, dtype=np.int32)
        self.partner = np.full(n, -1, dtype=np.int32)
        self.fraction = np.zeros(n)
        self.start = np.zeros(n)
        self.end = np.zeros(n)
        self._output = np.full(n, -1, dtype=np.int64)  # where each task's output data lives
        self._busy_starts: list[list[float]] = [[] for _ in range(m)]
        self._busy_ends: list[list[float]] = [[] for _ in range(m)]
        self._is_gpu = problem.cluster.kind == DeviceKind.GPU
        workload = problem.workload
        self._edge_cost = None if workload.edge_cost is None else workload.edge_cost.tolist()

    # --- queries for policies ---------------------------------------------------------------

    def data_ready(self, task: int) -> np.ndarray:
        """Per device, the earliest time the task's inputs could all be there (s)."""
        workload = self.problem.workload
        ready = np.full(self.problem.num_devices, float(workload.arrival[task]))
        for edge in range(int(workload.parent_ptr[task]), int(workload.parent_ptr[task + 1])):
            parent = int(workload.parent_idx[edge])
            transfer = costs.edge_transfer(
                self.problem.cluster,
                float(workload.edge_data[edge]),
                None if self._edge_cost is None else self._edge_cost[edge],
                int(self._output[parent]),
            )
            np.maximum(ready, self.end[parent] + transfer, out=ready)
        return ready

    def earliest_starts(self, ready: np.ndarray, durations: np.ndarray) -> np.ndarray:
        """Per device, the earliest start of a task of that duration given its data ready times:
        after the device's queue, or in an idle gap for insertion policies."""
        starts = np.maximum(ready, self.free_at)
        if self.insertion:
            for device in np.flatnonzero(ready < self.free_at).tolist():
                starts[device] = self._gap(device, float(ready[device]), float(durations[device]))
        return starts

    def finish_times(
        self, task: int, ready: np.ndarray, durations: np.ndarray | None = None
    ) -> np.ndarray:
        """Per device, when the whole task would finish there (inf where it does not fit).
        `durations` defaults to the true execution times; a policy may pass its estimates."""
        if durations is None:
            durations = self.problem.exec_time[task]
        finish = self.earliest_starts(ready, durations) + durations
        finish[~self.problem.feasible[task]] = np.inf
        return finish

    def split_start(self, ready: np.ndarray, gpu: int, cpu: int) -> float:
        """When a split over `gpu` and `cpu` could start: both devices free, data on both."""
        return max(ready[gpu], ready[cpu], self.free_at[gpu], self.free_at[cpu])

    # --- the engine's own work --------------------------------------------------------------

    def commit(self, task: int, placement: Placement, ready: np.ndarray) -> None:
        if isinstance(placement, Split) and 0.0 < placement.fraction < 1.0:
            self._commit_split(task, placement, ready)
            return
        if isinstance(placement, Split):  # a "split" of 0 or 1 is a whole task
            placement = placement.gpu if placement.fraction >= 1.0 else placement.cpu
        device = int(placement)
        if not 0 <= device < self.problem.num_devices:
            raise PolicyError(f"task {task} placed on device {device}: no such device")
        if not self.problem.feasible[task, device]:
            raise PolicyError(f"task {task} placed on device {device}: its data does not fit")
        duration = float(self.problem.exec_time[task, device])
        begin = self._start_on(device, float(ready[device]), duration)
        self._occupy(device, begin, begin + duration)
        self._record(task, device, -1, 1.0 if self._is_gpu[device] else 0.0, begin, duration)
        self._output[task] = device

    def _commit_split(self, task: int, split: Split, ready: np.ndarray) -> None:
        problem = self.problem
        gpu, cpu, fraction = split.gpu, split.cpu, float(split.fraction)
        if not problem.splittable or not self._is_gpu[gpu] or self._is_gpu[cpu]:
            raise PolicyError(f"task {task}: a split needs a GPU and a CPU core, got {gpu}, {cpu}")
        low, high = costs.fraction_bounds(
            problem.workload.memory[task : task + 1],
            float(problem.cluster.memory[cpu]),
            float(problem.cluster.memory[gpu]),
        )
        if not low[0] - 1e-12 <= fraction <= high[0] + 1e-12:
            raise PolicyError(f"task {task}: GPU share {fraction:.3f} does not fit the memory")
        duration = float(
            costs.split_time(
                problem.exec_time[task, cpu],
                problem.exec_time[task, gpu],
                problem.cluster.latency[gpu],
                fraction,
            )
        )
        begin = float(self.split_start(ready, gpu, cpu))
        self._occupy(gpu, begin, begin + duration)
        self._occupy(cpu, begin, begin + duration)
        self._record(task, gpu, cpu, fraction, begin, duration)
        self._output[task] = cpu  # the parts meet in host memory

    def _record(
        self, task: int, device: int, partner: int, fraction: float, begin: float, duration: float
    ) -> None:
        self.device[task], self.partner[task], self.fraction[task] = device, partner, fraction
        self.start[task], self.end[task] = begin, begin + duration

    def _occupy(self, device: int, begin: float, finish: float) -> None:
        if finish > self.free_at[device]:
            self.free_at[device] = finish
        if self.insertion:
            position = bisect.bisect_right(self._busy_starts[device], begin)
            self._busy_starts[device].insert(position, begin)
            self._busy_ends[device].insert(position, finish)

    def _start_on(self, device: int, ready: float, duration: float) -> float:
        free = float(self.free_at[device])
        if ready >= free:
            return ready
        return self._gap(device, ready, duration) if self.insertion else free

    def _gap(self, device: int, ready: float, duration: float) -> float:
        """The earliest time >= ready when `device` is idle for `duration` seconds."""
        starts, ends = self._busy_starts[device], self._busy_ends[device]
        candidate = ready
        for index in range(bisect.bisect_right(ends, ready), len(starts)):
            if candidate + duration <= starts[index]:
                return candidate
            candidate = max(candidate, ends[index])
        return candidate

    def schedule(self) -> Schedule:
        return Schedule(
            device=self.device.copy(),
            partner=self.partner.copy(),
            gpu_fraction=self.fraction.copy(),
            start=self.start.copy(),
            end=self.end.copy(),
        )


def decision_order(problem: Problem, priority: np.ndarray | None) -> Iterator[int]:
    """Released tasks in order of (arrival, -priority, index). The caller must have placed each
    yielded task before asking for the next: placing a task may release its children."""
    workload = problem.workload
    arrival = workload.arrival
    rank = np.zeros(problem.num_tasks) if priority is None else -np.asarray(priority, float)
    if not workload.has_dependencies:
        yield from np.lexsort((np.arange(problem.num_tasks), rank, arrival)).tolist()
        return
    pending = np.diff(workload.parent_ptr).astype(np.int64)
    child_ptr, child_idx, _ = workload.children
    heap = [(float(arrival[t]), float(rank[t]), t) for t in np.flatnonzero(pending == 0).tolist()]
    heapq.heapify(heap)
    while heap:
        task = heapq.heappop(heap)[2]
        yield task
        for child in child_idx[child_ptr[task] : child_ptr[task + 1]].tolist():
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(heap, (float(arrival[child]), float(rank[child]), child))


def simulate(
    problem: Problem,
    policy: Policy,
    rng: np.random.Generator,
    on_progress: ProgressCallback | None = None,
) -> Schedule:
    engine = Engine(problem, policy.insertion)
    policy.prepare(problem, engine, rng)
    n = problem.num_tasks
    for placed, task in enumerate(decision_order(problem, policy.priority())):
        ready = engine.data_ready(task)
        engine.commit(task, policy.place(task, ready), ready)
        policy.placed(task)
        if on_progress is not None and placed % PROGRESS_EVERY == 0:
            on_progress(placed / n)
    if on_progress is not None:
        on_progress(1.0)
    return engine.schedule()
