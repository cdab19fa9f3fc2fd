"""A plain-Python event simulation of the runtime schedulers (eager, ws, dm, dmda, dmdas,
heteroprio), written from the rules policies/runtime.py, policies/heteroprio.py and
kernel_runtime.py state, independently of the kernel: lists and loops, one instant at a time, no
code of app/sim's engine or policies. The tests cross-check the engine against it schedule for
schedule; bench/heuristics.py times it as the engine's pure-Python peer."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from app.sim import costs
from app.sim.cluster import DeviceKind
from app.sim.problem import Problem

RUNTIME = ("eager", "ws", "dm", "dmda", "dmdas", "heteroprio")


@dataclass
class Result:
    device: list[int]
    start: list[float]
    end: list[float]
    aborted: int = 0


@dataclass
class Run:
    """The simulation's state: what each device runs, its queue, what each task waits for."""

    problem: Problem
    rule: str
    believed: list[list[float]]
    priority: list[float]
    now: float = 0.0
    running: list[int | None] = field(default_factory=list)
    until: list[float] = field(default_factory=list)
    believed_end: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    queues: list[list[int]] = field(default_factory=list)
    central: list[int] = field(default_factory=list)
    data_at: list[float] = field(default_factory=list)
    releaser: list[int] = field(default_factory=list)
    factor: list[float] = field(default_factory=list)
    turn: int = 0

    def __post_init__(self) -> None:
        n, m = self.problem.num_tasks, self.problem.num_devices
        self.times = self.problem.exec_time.tolist()
        self.fits = self.problem.feasible.tolist()
        self.gpu = (self.problem.cluster.kind == DeviceKind.GPU).tolist()
        self.running, self.until = [None] * m, [0.0] * m
        self.believed_end, self.load = [0.0] * m, [0.0] * m
        self.queues = [[] for _ in range(m)]
        self.data_at, self.releaser, self.factor = [0.0] * n, [-1] * n, [1.0] * n
        self.result = Result([-1] * n, [0.0] * n, [0.0] * n)
        workload = self.problem.workload
        ptr, idx = workload.parent_ptr.tolist(), workload.parent_idx.tolist()
        self.parents = [[(idx[e], e) for e in range(ptr[t], ptr[t + 1])] for t in range(n)]
        self.children: list[list[int]] = [[] for _ in range(n)]
        for child in range(n):
            for parent, _ in self.parents[child]:
                self.children[parent].append(child)

    # --- data ----------------------------------------------------------------------------------

    def inputs_there(self, task: int, device: int) -> float:
        """When the task's inputs reach `device` if they start moving now."""
        workload = self.problem.workload
        there = self.now
        for parent, edge in self.parents[task]:
            explicit = None if workload.edge_cost is None else float(workload.edge_cost[edge])
            data = float(workload.edge_data[edge])
            source = self.result.device[parent]
            transfer = float(
                costs.edge_transfer(self.problem.cluster, data, explicit, source)[device]
            )
            there = max(there, self.now + transfer)
        return there

    def length(self, task: int, device: int) -> float:
        value = self.believed[task][device]
        return 0.0 if math.isnan(value) else value

    # --- events --------------------------------------------------------------------------------

    def start(self, task: int, device: int) -> None:
        begin = max(self.now, self.data_at[task])
        self.running[device], self.until[device] = task, begin + self.times[task][device]
        self.believed_end[device] = begin + self.length(task, device)
        self.result.device[task], self.result.start[task] = device, begin
        self.result.end[task] = self.until[device]

    def push(self, task: int) -> None:
        m = self.problem.num_devices
        fitting = [d for d in range(m) if self.fits[task][d]]
        if self.rule in ("eager", "heteroprio"):
            self.central.append(task)
            self.factor[task] = self.acceleration(task, fitting)
            return
        if self.rule == "ws":
            device = self.releaser[task]
            if device < 0 or not self.fits[task][device]:
                device = self.turn
                while not self.fits[task][device]:
                    device = (device + 1) % m
                self.turn = (device + 1) % m
            self.queues[device].append(task)
        else:
            device = self.deque_model_choice(task, fitting)
            self.load[device] += self.length(task, device)
            queue = self.queues[device]
            position = len(queue)
            if self.rule == "dmdas":
                while position > 0 and self.priority[queue[position - 1]] < self.priority[task]:
                    position -= 1
            queue.insert(position, task)
        self.data_at[task] = self.inputs_there(task, device)

    def deque_model_choice(self, task: int, fitting: list[int]) -> int:
        uncalibrated = [d for d in fitting if math.isnan(self.believed[task][d])]
        if uncalibrated:
            return min(uncalibrated, key=lambda d: (len(self.queues[d]), d))

        def score(d: int) -> float:
            expected = max(self.now, self.believed_end[d]) + self.load[d] + self.believed[task][d]
            if self.rule != "dm":
                expected += self.inputs_there(task, d) - self.now
            return expected

        return min(fitting, key=lambda d: (score(d), d))

    def acceleration(self, task: int, fitting: list[int]) -> float:
        lengths = [self.believed[task][d] for d in fitting]
        if any(math.isnan(x) for x in lengths):
            return 1.0
        cpu = min((self.believed[task][d] for d in fitting if not self.gpu[d]), default=math.inf)
        gpu = min((self.believed[task][d] for d in fitting if self.gpu[d]), default=math.inf)
        if math.inf in (cpu, gpu) or cpu == gpu:
            return 1.0
        return cpu / gpu if gpu > 0 else math.inf

    def take(self, device: int) -> int | None:
        if self.rule == "eager":
            fitting = [t for t in self.central if self.fits[t][device]]
            task = fitting[0] if fitting else None
        elif self.rule == "heteroprio":
            sign = -1.0 if self.gpu[device] else 1.0
            fitting = [t for t in self.central if self.fits[t][device]]
            key = lambda t: (sign * self.factor[t], -self.priority[t], t)  # noqa: E731
            task = min(fitting, key=key) if fitting else None
        elif self.queues[device]:
            task = self.queues[device].pop(0)
            if self.rule != "ws":
                self.load[device] -= self.length(task, device)
            return task  # its data left when it was pushed here
        elif self.rule == "ws":
            task = self.steal(device)
        else:
            return None
        if task is not None:
            if task in self.central:
                self.central.remove(task)
            self.data_at[task] = self.inputs_there(task, device)
        return task

    def steal(self, device: int) -> int | None:
        m = self.problem.num_devices
        victims = sorted(
            (v for v in range(m) if v != device and self.queues[v]),
            key=lambda v: (-len(self.queues[v]), v),
        )
        for victim in victims:
            for task in self.queues[victim]:
                if self.fits[task][device]:
                    self.queues[victim].remove(task)
                    return task
        return None

    def spoliate(self, device: int) -> bool:
        best = None
        for victim, task in enumerate(self.running):
            if task is None or self.gpu[victim] == self.gpu[device] or not self.fits[task][device]:
                continue
            if math.isnan(self.believed[task][device]):
                continue
            there = self.inputs_there(task, device)
            sooner = there + self.believed[task][device] < self.believed_end[victim]
            if sooner and (best is None or self.believed_end[victim] > self.believed_end[best[0]]):
                best = (victim, there)
        if best is None:
            return False
        victim, there = best
        task = self.running[victim]
        assert task is not None
        self.running[victim], self.believed_end[victim] = None, 0.0
        self.result.aborted += 1
        self.data_at[task] = there
        self.start(task, device)
        return True

    def dispatch(self) -> None:
        changed = True
        while changed:
            changed = False
            for device in range(self.problem.num_devices):
                if self.running[device] is not None:
                    continue
                task = self.take(device)
                if task is not None:
                    self.start(task, device)
                    changed = True
                elif self.rule == "heteroprio" and self.spoliate(device):
                    changed = True


def reference_schedule(
    problem: Problem,
    rule: str,
    believed: np.ndarray | None = None,
    priority: np.ndarray | None = None,
) -> Result:
    """The schedule of `rule` deciding on `believed` (default: the true times) with tasks of
    `priority` (default: none, all equal)."""
    n = problem.num_tasks
    run = Run(
        problem,
        rule,
        (problem.exec_time if believed is None else believed).tolist(),
        [0.0] * n if priority is None else [float(p) for p in priority],
    )
    arrival = problem.workload.arrival.tolist()
    missing = [len(run.parents[t]) for t in range(n)]
    # Parents completed, not yet released: (arrival, -priority, task), the release order.
    waiting = [(arrival[t], -run.priority[t], t) for t in range(n) if missing[t] == 0]
    heapq.heapify(waiting)
    done = 0
    while done < n:
        busy = [run.until[d] for d, task in enumerate(run.running) if task is not None]
        run.now = min([*busy, waiting[0][0]] if waiting else busy)
        for device, task in enumerate(run.running):
            if task is None or run.until[device] > run.now:
                continue
            run.running[device], run.believed_end[device] = None, 0.0
            done += 1
            for child in run.children[task]:
                missing[child] -= 1
                if missing[child] == 0:
                    run.releaser[child] = device
                    heapq.heappush(waiting, (arrival[child], -run.priority[child], child))
        while waiting and waiting[0][0] <= run.now:
            run.push(heapq.heappop(waiting)[2])
        run.dispatch()
    return run.result
