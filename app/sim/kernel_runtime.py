"""The pull-based runtime schedulers' event loop, compiled with numba: StarPU's eager, ws, dm, dmda
and dmdas, and heteroprio (policies/runtime.py, policies/heteroprio.py say what each decides).

Unlike kernel.advance, which fixes a task's start when it decides its device, a runtime binds a
task to a device (or leaves it in a central queue) and the task starts only when the device gets
to it, so time advances by events:

- an *instant* is the earliest of the next completion of a running task and the next arrival of a
  task whose parents have all completed; at an instant, in this order:
- the devices whose task ends then become idle (in device order); a child whose last parent
  completed is then released, or waits for its arrival;
- the tasks released at the instant (arrived, every parent completed) are pushed, one at a time
  in (arrival, rank, index) order: to the central queue (eager, heteroprio) or to a device's queue
  (ws, dm, dmda, dmdas), where dm's choice sees the tasks pushed before it;
- the idle devices take work, lowest index first, passing over the devices again until none
  changes (a heteroprio spoliation makes its victim idle).

A task's inputs move to the device it is bound to when it is bound (pushed to a device's queue,
or taken from a central queue, or stolen), over the links kernel._data_ready models, starting
then: a device that takes the task holds it from that instant, and the task starts once its data
is there, for its true duration (`Tasks.exec_time`). The rules decide on `Rules.estimate`, which
may hold NaN (an uncalibrated performance model). Whole tasks only: no splits, no insertion.

`advance_runtime` stops after `steps` more completions (never in the middle of an instant) and
resumes from its `RuntimeState`, so engine.py can report progress between chunks.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from app.sim import kernel
from app.sim.kernel import Dag, Model, Platform, Rules

EAGER, WORK_STEALING, DM, DMDA, DMDAS, HETEROPRIO = range(10, 16)

# counters: tasks completed, tasks waiting for their arrival (kernel's heap helpers keep the
# heap's size at kernel.HEAP_SIZE), ws's round-robin turn, runs aborted by spoliation.
COMPLETED, TURN, ABORTED = 0, 2, 3
HEAP_SIZE = kernel.HEAP_SIZE

Workers = namedtuple("Workers", "running until believed_end load")
"""Per device (m,): the task it runs (-1: idle), the true end of that run (s), the end the
policy believes (start + estimate, NaN counted 0; 0 when idle) and the believed seconds of the
tasks queued on it (dm, dmda, dmdas; NaN counted 0)."""

Queues = namedtuple("Queues", "head tail count after before")
"""m + 1 FIFO queues as doubly linked lists over the tasks: queue d < m is device d's, queue m
the central one; head, tail (m + 1,) task or -1, count (m + 1,) tasks waiting; after, before (n,)
each queued task's neighbours (-1 at an end)."""

Bound = namedtuple("Bound", "data_at releaser factor")
"""Per task (n,): when its inputs are on the device it is bound to (s), the device whose
completion released it (-1: none, or not yet), and heteroprio's acceleration factor."""

RuntimeState = namedtuple("RuntimeState", "placements workers queues bound order counters clock")
"""What `advance_runtime` changes: kernel.Placements, `Workers`, `Queues`, `Bound`,
kernel.Order (its heap holds the tasks whose parents completed, by (arrival, rank, index); pending
counts each task's parents not yet completed), counters (COMPLETED..ABORTED) and clock (1,), the
current instant in seconds."""


@njit(cache=True)
def advance_runtime(model: Model, rules: Rules, state: RuntimeState, steps: int) -> int:
    """Run instants until at least `steps` more tasks have completed (or all have); returns how
    many have completed in all. Returns early, with no progress, if no event is left while tasks
    remain (every task fitting some device, that cannot happen)."""
    tasks, dag = model.tasks, model.dag
    workers, order, counters, clock = state.workers, state.order, state.counters, state.clock
    bound = state.bound
    n = tasks.exec_time.shape[0]
    target = min(n, counters[COMPLETED] + steps)
    heap, arrival, rank = order.heap, tasks.arrival, rules.rank
    while counters[COMPLETED] < target:
        now = _next_instant(workers.running, workers.until, heap, arrival, counters)
        if now == np.inf:
            break
        clock[0] = now
        _complete(now, dag, workers, bound, order, counters, arrival, rank)
        while counters[HEAP_SIZE] > 0 and arrival[heap[0]] <= now:
            task = kernel._heap_pop(heap, counters, arrival, rank)
            _release(task, now, model, rules, state)
        _dispatch(now, model, rules, state)
    return counters[COMPLETED]


@njit(cache=True, inline="always")
def _next_instant(
    running: np.ndarray, until: np.ndarray, heap: np.ndarray, arrival: np.ndarray,
    counters: np.ndarray,
) -> float:  # fmt: skip
    instant = np.inf
    for d in range(running.shape[0]):
        if running[d] >= 0 and until[d] < instant:
            instant = until[d]
    if counters[HEAP_SIZE] > 0 and arrival[heap[0]] < instant:
        instant = arrival[heap[0]]
    return instant


@njit(cache=True, inline="always")
def _complete(
    now: float, dag: Dag, workers: Workers, bound: Bound, order: kernel.Order,
    counters: np.ndarray, arrival: np.ndarray, rank: np.ndarray,
) -> None:  # fmt: skip
    """The devices whose task ends at `now` become idle; the children it completes go to the
    heap, remembering the device that released them (ws)."""
    running, releaser, pending = workers.running, bound.releaser, order.pending
    for d in range(running.shape[0]):
        task = running[d]
        if task < 0 or workers.until[d] > now:
            continue
        running[d], workers.believed_end[d] = -1, 0.0
        counters[COMPLETED] += 1
        kernel._release_children(task, dag, order, counters, arrival, rank)
        for k in range(dag.child_ptr[task], dag.child_ptr[task + 1]):
            child = dag.child_idx[k]
            if pending[child] == 0 and releaser[child] < 0:
                releaser[child] = d


@njit(cache=True, inline="always")
def _inputs_there(
    task: int, device: int, now: float, dag: Dag, platform: Platform, output: np.ndarray
) -> float:
    """When the task's inputs are on `device` if they start moving at `now`: the slowest of its
    edges, each costed as kernel._data_ready costs it."""
    is_gpu, latency, bandwidth = platform.is_gpu, platform.latency, platform.bandwidth
    there = now
    for edge in range(dag.parent_ptr[task], dag.parent_ptr[task + 1]):
        source = output[dag.parent_idx[edge]]
        if source == device:
            continue
        data = dag.edge_data[edge]
        if dag.explicit_edges:
            transfer = dag.edge_cost[edge]
        else:
            out_of = 0.0
            if is_gpu[source]:
                out_of = latency[source] + data / bandwidth[source]
            transfer = out_of
            if is_gpu[device]:
                transfer = (latency[device] + data / bandwidth[device]) + out_of
        if now + transfer > there:
            there = now + transfer
    return there


@njit(cache=True, inline="always")
def _believed(value: float) -> float:
    """A believed length as the queues count it: NaN (uncalibrated) counts 0."""
    return 0.0 if np.isnan(value) else value


# --- queues -------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _insert_after(queue: int, task: int, previous: int, queues: Queues) -> None:
    """Link `task` into `queue` after `previous` (-1: at the head)."""
    head, tail, after, before = queues.head, queues.tail, queues.after, queues.before
    following = head[queue] if previous < 0 else after[previous]
    before[task], after[task] = previous, following
    if previous < 0:
        head[queue] = task
    else:
        after[previous] = task
    if following < 0:
        tail[queue] = task
    else:
        before[following] = task
    queues.count[queue] += 1


@njit(cache=True, inline="always")
def _unlink(queue: int, task: int, queues: Queues) -> None:
    head, tail, after, before = queues.head, queues.tail, queues.after, queues.before
    previous, following = before[task], after[task]
    if previous < 0:
        head[queue] = following
    else:
        after[previous] = following
    if following < 0:
        tail[queue] = previous
    else:
        before[following] = previous
    queues.count[queue] -= 1


@njit(cache=True, inline="always")
def _insert_by_priority(queue: int, task: int, rank: np.ndarray, queues: Queues) -> None:
    """dmdas: after every queued task of higher or equal priority (lower or equal rank), so
    equal priorities stay first come, first served."""
    previous = queues.tail[queue]
    while previous >= 0 and rank[previous] > rank[task]:
        previous = queues.before[previous]
    _insert_after(queue, task, previous, queues)


# --- pushing released tasks ---------------------------------------------------------------------


@njit(cache=True)
def _release(task: int, now: float, model: Model, rules: Rules, state: RuntimeState) -> None:
    tasks, dag, platform = model
    queues, bound, workers = state.queues, state.bound, state.workers
    rule, m = rules.rule, tasks.exec_time.shape[1]
    if rule in (EAGER, HETEROPRIO):
        if rule == HETEROPRIO:
            bound.factor[task] = _acceleration(task, tasks.feasible, rules.estimate, platform)
        _insert_after(m, task, queues.tail[m], queues)
        return
    output = state.placements.output
    if rule == WORK_STEALING:
        device = bound.releaser[task]
        if device < 0 or not tasks.feasible[task, device]:
            device = kernel._round_robin(task, tasks.feasible, state.counters)
        _insert_after(device, task, queues.tail[device], queues)
    else:
        device = _deque_model(task, now, model, rules, state)
        workers.load[device] += _believed(rules.estimate[task, device])
        if rule == DMDAS:
            _insert_by_priority(device, task, rules.rank, queues)
        else:
            _insert_after(device, task, queues.tail[device], queues)
    bound.data_at[task] = _inputs_there(task, device, now, dag, platform, output)


@njit(cache=True, inline="always")
def _deque_model(task: int, now: float, model: Model, rules: Rules, state: RuntimeState) -> int:
    """dm, dmda, dmdas: the fitting device with the least expected end of its queue plus the
    task's believed length there (dmda, dmdas: plus the time its inputs take to get there), the
    lowest index on ties; where the model is uncalibrated for the task (NaN on some fitting
    device), the NaN device with the fewest tasks queued instead (exploration)."""
    tasks, dag, platform = model
    workers, count, output = state.workers, state.queues.count, state.placements.output
    estimate, feasible = rules.estimate, tasks.feasible
    with_data = rules.rule != DM
    best, best_score, explore = -1, np.inf, -1
    for d in range(feasible.shape[1]):
        if not feasible[task, d]:
            continue
        length = estimate[task, d]
        if np.isnan(length):
            if explore < 0 or count[d] < count[explore]:
                explore = d
            continue
        score = max(now, workers.believed_end[d]) + workers.load[d] + length
        if with_data:
            score += _inputs_there(task, d, now, dag, platform, output) - now
        if score < best_score:
            best, best_score = d, score
    return explore if explore >= 0 else best


@njit(cache=True, inline="always")
def _acceleration(
    task: int, feasible: np.ndarray, estimate: np.ndarray, platform: Platform
) -> float:
    """Believed time on the best fitting CPU over that on the best fitting GPU; 1 where a time
    is NaN or the task fits one kind only (the factor then orders nothing)."""
    cpu, gpu = np.inf, np.inf
    for d in range(feasible.shape[1]):
        if not feasible[task, d]:
            continue
        length = estimate[task, d]
        if np.isnan(length):
            return 1.0
        if platform.is_gpu[d]:
            gpu = min(gpu, length)
        else:
            cpu = min(cpu, length)
    if cpu == np.inf or gpu == np.inf or cpu == gpu:
        return 1.0
    return cpu / gpu if gpu > 0 else np.inf


# --- idle devices take work ---------------------------------------------------------------------


@njit(cache=True)
def _dispatch(now: float, model: Model, rules: Rules, state: RuntimeState) -> None:
    """Every idle device takes a task, lowest index first, until none changes."""
    running, m = state.workers.running, model.tasks.exec_time.shape[1]
    changed = True
    while changed:
        changed = False
        for d in range(m):
            if running[d] >= 0:
                continue
            task = _take(d, now, model, rules, state)
            if task >= 0:
                _start(task, d, now, model, rules, state)
                changed = True
            elif rules.rule == HETEROPRIO and _spoliate(d, now, model, rules, state):
                changed = True


@njit(cache=True, inline="always")
def _take(device: int, now: float, model: Model, rules: Rules, state: RuntimeState) -> int:
    """The task `device` takes now (unlinked from its queue, its data on the way), or -1."""
    tasks, dag, platform = model
    queues, bound, rule = state.queues, state.bound, rules.rule
    m = tasks.exec_time.shape[1]
    if rule in (EAGER, HETEROPRIO):
        if rule == EAGER:
            task = _first_fitting(device, m, tasks.feasible, queues)
        else:
            task = _heteroprio_pick(
                device, tasks.feasible, rules.rank, bound.factor, platform, queues
            )
        queue = m
    elif queues.count[device] > 0:
        task, queue = queues.head[device], device
        if rule != WORK_STEALING:
            state.workers.load[device] -= _believed(rules.estimate[task, device])
            _unlink(queue, task, queues)
            return task
    else:
        if rule != WORK_STEALING:
            return -1
        task, queue = _steal(device, tasks.feasible, queues)
    if task < 0:
        return -1
    _unlink(queue, task, queues)
    if queue != device:  # from the central queue, or stolen: the data moves now
        output = state.placements.output
        bound.data_at[task] = _inputs_there(task, device, now, dag, platform, output)
    return task


@njit(cache=True, inline="always")
def _first_fitting(device: int, queue: int, feasible: np.ndarray, queues: Queues) -> int:
    """The oldest task of `queue` that fits `device`, or -1."""
    task = queues.head[queue]
    while task >= 0 and not feasible[task, device]:
        task = queues.after[task]
    return task


@njit(cache=True, inline="always")
def _steal(device: int, feasible: np.ndarray, queues: Queues) -> tuple[int, int]:
    """(task, victim): the oldest task `device` fits in the queue with the most waiting tasks
    (lowest index on ties), trying the next fullest queue while the fuller ones hold none it
    fits; (-1, -1) if none."""
    count, m = queues.count, feasible.shape[1]
    last_count, last_victim = np.iinfo(np.int64).max, -1
    while True:
        victim = -1
        for v in range(m):
            if v == device or count[v] == 0:
                continue
            if count[v] > last_count or (count[v] == last_count and v <= last_victim):
                continue  # tried already
            if victim < 0 or count[v] > count[victim]:
                victim = v
        if victim < 0:
            return -1, -1
        task = _first_fitting(device, victim, feasible, queues)
        if task >= 0:
            return task, victim
        last_count, last_victim = count[victim], victim


@njit(cache=True, inline="always")
def _heteroprio_pick(
    device: int, feasible: np.ndarray, rank: np.ndarray, factor: np.ndarray, platform: Platform,
    queues: Queues,
) -> int:  # fmt: skip
    """The ready task `device` fits with the least acceleration factor (a CPU core) or the
    greatest (a GPU); ties: higher priority (lower rank), then lower index. -1 if none."""
    gpu = platform.is_gpu[device]
    best = -1
    task = queues.head[queues.head.shape[0] - 1]
    while task >= 0:
        if feasible[task, device]:
            if best < 0:
                best = task
            else:
                key, best_key = factor[task], factor[best]
                if gpu:
                    key, best_key = -key, -best_key
                if key < best_key or (
                    key == best_key
                    and (rank[task] < rank[best] or (rank[task] == rank[best] and task < best))
                ):
                    best = task
        task = queues.after[task]
    return best


@njit(cache=True, inline="always")
def _start(
    task: int, device: int, now: float, model: Model, rules: Rules, state: RuntimeState
) -> None:
    """`device` holds the task from `now`; it runs once its data is there, for its true time."""
    placed, workers = state.placements, state.workers
    begin = max(now, state.bound.data_at[task])
    finish = begin + model.tasks.exec_time[task, device]
    workers.running[device], workers.until[device] = task, finish
    workers.believed_end[device] = begin + _believed(rules.estimate[task, device])
    placed.device[task], placed.partner[task], placed.output[task] = device, -1, device
    placed.fraction[task] = 1.0 if model.platform.is_gpu[device] else 0.0
    placed.start[task], placed.end[task] = begin, finish


@njit(cache=True, inline="always")
def _spoliate(device: int, now: float, model: Model, rules: Rules, state: RuntimeState) -> bool:
    """heteroprio: idle `device`, with nothing it can take, aborts the task running on a device
    of the other kind that it would finish (its data moved, its believed time) before that
    task's believed end there, the latest such end first (lowest index on ties), and restarts
    it. Returns whether it did. A NaN belief never spoliates nor is spoliated."""
    tasks, dag, platform = model
    workers, is_gpu, output = state.workers, platform.is_gpu, state.placements.output
    victim, victim_there = -1, 0.0
    for e in range(is_gpu.shape[0]):
        task = workers.running[e]
        if task < 0 or is_gpu[e] == is_gpu[device] or not tasks.feasible[task, device]:
            continue
        length = rules.estimate[task, device]
        if np.isnan(length):
            continue
        there = _inputs_there(task, device, now, dag, platform, output)
        if there + length < workers.believed_end[e] and (
            victim < 0 or workers.believed_end[e] > workers.believed_end[victim]
        ):
            victim, victim_there = e, there
    if victim < 0:
        return False
    task = workers.running[victim]
    workers.running[victim], workers.believed_end[victim] = -1, 0.0
    state.counters[ABORTED] += 1
    state.bound.data_at[task] = victim_there
    _start(task, device, now, model, rules, state)
    return True
