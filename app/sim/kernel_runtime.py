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
COUNTERS = 4
# The rows of Queues.ready, Queues.ready_size and Bound.key: heteroprio's two kinds of device.
CORES, GPUS = 0, 1
# The rows of Queues.links and Queues.ends.
AFTER, BEFORE = 0, 1
HEAD, TAIL, COUNT = 0, 1, 2

Workers = namedtuple("Workers", "running until believed_end load")
"""Per device (m,): the task it runs (-1: idle), the true end of that run (s), the end the
policy believes (start + estimate, NaN counted 0; 0 when idle) and the believed seconds of the
tasks queued on it (dm, dmda, dmdas; NaN counted 0)."""

Queues = namedtuple("Queues", "links ends ready ready_size")
"""m + 1 FIFO queues as doubly linked lists over the tasks (queue d < m is device d's, queue m
the central one): links (2, n), each queued task's neighbours, row AFTER and row BEFORE (-1 at
an end); ends (3, m + 1), each queue's HEAD and TAIL task (-1: empty) and COUNT of tasks.
heteroprio also keeps its central queue's tasks in two binary heaps, ready (2, n), by
(Bound.key, rank, index) (kernel's heap helpers): row CORES holds those that fit some core,
least acceleration factor first, row GPUS those that fit some GPU, greatest first; a task taken
stays in the other heap until it reaches the top (it has a device then: dropped). ready_size
(2, HEAP_SIZE + 1): each heap's size at [kind, HEAP_SIZE], where kernel's helpers read it."""

Bound = namedtuple("Bound", "data_at releaser key")
"""Per task (n,): when its inputs are on the device it is bound to (s), the device whose
completion released it (-1: none, or not yet); key (2, n), heteroprio's order: row CORES the
acceleration factor, row GPUS minus it (the least key first for either kind)."""

RuntimeState = namedtuple("RuntimeState", "placements workers queues bound order counters clock")
"""What `advance_runtime` changes: kernel.Placements, `Workers`, `Queues`, `Bound`,
kernel.Order (its heap holds the tasks whose parents completed, by (arrival, rank, index); pending
counts each task's parents not yet completed), counters (COMPLETED..ABORTED) and clock (1,), the
current instant in seconds.

As in kernel.py, the loop reads each group's arrays once, before it, and hands the helpers on
every task's path arrays, not groups (a group costs a reference count per array each time it is
handed on); the DAG's groups go only to the code that walks edges."""


@njit(cache=True)
def advance_runtime(model: Model, rules: Rules, state: RuntimeState, steps: int) -> int:
    """Run instants until at least `steps` more tasks have completed (or all have); returns how
    many have completed in all. Returns early, with no progress, if no event is left while tasks
    remain (every task fitting some device, that cannot happen)."""
    tasks, dag, platform = model
    placed, workers, queues, bound, order, counters, clock = state
    exec_time, feasible, arrival = tasks.exec_time, tasks.feasible, tasks.arrival
    estimate, rank, rule = rules.estimate, rules.rank, rules.rule
    is_gpu, parent_ptr, child_ptr = platform.is_gpu, dag.parent_ptr, dag.child_ptr
    running, until, believed_end, load = workers
    links, ends, ready, ready_size = queues
    data_at, releaser, key = bound
    heap = order.heap
    device_of, partner_of, fraction_of, start, end, output = placed
    n, m = exec_time.shape
    there = np.empty(m)  # when a task's inputs would be on each device
    target = min(n, counters[COMPLETED] + steps)
    while counters[COMPLETED] < target:
        now = _next_instant(running, until, heap, arrival, counters)
        if now == np.inf:
            break
        clock[0] = now
        for d in range(m):  # completions
            task = running[d]
            if task < 0 or until[d] > now:
                continue
            running[d], believed_end[d] = -1, 0.0
            counters[COMPLETED] += 1
            if child_ptr[task + 1] > child_ptr[task]:
                _release_children(task, d, dag, order, releaser, counters, arrival, rank)
        while counters[HEAP_SIZE] > 0 and arrival[heap[0]] <= now:  # releases
            task = kernel._heap_pop(heap, counters, arrival, rank)
            if rule in (EAGER, HETEROPRIO):
                if rule == HETEROPRIO:
                    factor = _acceleration(task, feasible, estimate, is_gpu)
                    key[CORES, task], key[GPUS, task] = factor, -factor
                    _make_ready(task, feasible, is_gpu, ready, ready_size, key, rank)
                _insert_after(m, task, ends[TAIL, m], links, ends)
                continue
            if rule == WORK_STEALING:
                device = releaser[task]
                if device < 0 or not feasible[task, device]:
                    device = kernel._round_robin(task, feasible, counters)
                _insert_after(device, task, ends[TAIL, device], links, ends)
            else:
                for d in range(m):
                    there[d] = now
                if rule != DM and parent_ptr[task + 1] > parent_ptr[task]:
                    for d in range(m):
                        there[d] = _inputs_there(task, d, now, dag, platform, output)
                device = _deque_model(
                    task, now, rule, feasible, estimate, believed_end, load, ends, there
                )
                load[device] += _believed(estimate[task, device])
                if rule == DMDAS:
                    _insert_by_priority(device, task, rank, links, ends)
                else:
                    _insert_after(device, task, ends[TAIL, device], links, ends)
            data_at[task] = now
            if parent_ptr[task + 1] > parent_ptr[task]:
                data_at[task] = _inputs_there(task, device, now, dag, platform, output)
        # Idle devices take work, lowest index first, until none changes: one pass, unless a
        # spoliation made a device idle (a take never gives another device something to take).
        changed = rule == HETEROPRIO or _queued(ends) > 0
        while changed:
            changed = False
            for d in range(m):
                if running[d] >= 0:
                    continue
                if rule == HETEROPRIO:
                    task, queue = _heteroprio_pick(
                        d, feasible, rank, is_gpu[d], links, ends, ready, ready_size, key,
                        device_of,
                    ), m  # fmt: skip
                    if task >= 0:
                        _unlink(m, task, links, ends)
                else:
                    task, queue = _take(d, rule, feasible, estimate, load, links, ends)
                if task >= 0 and queue != d:  # from the central queue, or stolen: data moves now
                    data_at[task] = now
                    if parent_ptr[task + 1] > parent_ptr[task]:
                        data_at[task] = _inputs_there(task, d, now, dag, platform, output)
                if task < 0 and rule == HETEROPRIO:
                    task = _spoliate(
                        d, now, feasible, estimate, is_gpu, running, believed_end, data_at,
                        counters, parent_ptr, dag, platform, output,
                    )  # fmt: skip
                    changed = changed or task >= 0
                if task < 0:
                    continue
                # The device holds the task from now; it runs once its data is there.
                begin = max(now, data_at[task])
                finish = begin + exec_time[task, d]
                running[d], until[d] = task, finish
                believed_end[d] = begin + _believed(estimate[task, d])
                device_of[task], partner_of[task], output[task] = d, -1, d
                fraction_of[task] = 1.0 if is_gpu[d] else 0.0
                start[task], end[task] = begin, finish
    return counters[COMPLETED]


@njit(cache=True, inline="always")
def _next_instant(
    running: np.ndarray, until: np.ndarray, heap: np.ndarray, arrival: np.ndarray,
    counters: np.ndarray,
) -> float:  # fmt: skip
    """The earliest completion of a running task or arrival of a task whose parents completed."""
    instant = np.inf
    for d in range(running.shape[0]):
        if running[d] >= 0 and until[d] < instant:
            instant = until[d]
    if counters[HEAP_SIZE] > 0 and arrival[heap[0]] < instant:
        instant = arrival[heap[0]]
    return instant


@njit(cache=True, inline="always")
def _release_children(
    task: int, device: int, dag: Dag, order: kernel.Order, releaser: np.ndarray,
    counters: np.ndarray, arrival: np.ndarray, rank: np.ndarray,
) -> None:  # fmt: skip
    """The children `task` (completed on `device`) completes go to the heap, remembering the
    device that released them (ws)."""
    kernel._release_children(task, dag, order, counters, arrival, rank)
    pending = order.pending
    for k in range(dag.child_ptr[task], dag.child_ptr[task + 1]):
        child = dag.child_idx[k]
        if pending[child] == 0 and releaser[child] < 0:
            releaser[child] = device


@njit(cache=True, inline="always")
def _inputs_there(
    task: int, device: int, now: float, dag: Dag, platform: Platform, output: np.ndarray
) -> float:
    """When the task's inputs are on `device` if they start moving at `now`: the slowest of its
    edges, each costed as kernel._data_ready costs it. The loop calls it for tasks with parents
    only (a task without brings its input along: now), handing on the groups only then."""
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
def _join(queue: int, first: int, second: int, links: np.ndarray, ends: np.ndarray) -> None:
    """Make `second` follow `first` in `queue` (-1 for either: that end of the queue)."""
    if first < 0:
        ends[HEAD, queue] = second
    else:
        links[AFTER, first] = second
    if second < 0:
        ends[TAIL, queue] = first
    else:
        links[BEFORE, second] = first


@njit(cache=True, inline="always")
def _insert_after(
    queue: int, task: int, previous: int, links: np.ndarray, ends: np.ndarray
) -> None:
    """Link `task` into `queue` after `previous` (-1: at the head)."""
    following = ends[HEAD, queue] if previous < 0 else links[AFTER, previous]
    _join(queue, previous, task, links, ends)
    _join(queue, task, following, links, ends)
    ends[COUNT, queue] += 1


@njit(cache=True, inline="always")
def _unlink(queue: int, task: int, links: np.ndarray, ends: np.ndarray) -> None:
    _join(queue, links[BEFORE, task], links[AFTER, task], links, ends)
    ends[COUNT, queue] -= 1


@njit(cache=True, inline="always")
def _queued(ends: np.ndarray) -> int:
    """Tasks waiting in all the queues."""
    total = 0
    for queue in range(ends.shape[1]):
        total += ends[COUNT, queue]
    return total


@njit(cache=True, inline="always")
def _insert_by_priority(
    queue: int, task: int, rank: np.ndarray, links: np.ndarray, ends: np.ndarray
) -> None:
    """dmdas: after every queued task of higher or equal priority (lower or equal rank), so
    equal priorities stay first come, first served."""
    previous = ends[TAIL, queue]
    while previous >= 0 and rank[previous] > rank[task]:
        previous = links[BEFORE, previous]
    _insert_after(queue, task, previous, links, ends)


# --- pushing released tasks ---------------------------------------------------------------------


@njit(cache=True, inline="always")
def _deque_model(
    task: int, now: float, rule: int, feasible: np.ndarray, estimate: np.ndarray,
    believed_end: np.ndarray, load: np.ndarray, ends: np.ndarray, there: np.ndarray,
) -> int:  # fmt: skip
    """dm, dmda, dmdas: the fitting device with the least expected end of its queue plus the
    task's believed length there (dmda, dmdas: plus the time its inputs take to get there,
    there[d] - now), the lowest index on ties; where the model is uncalibrated for the task (NaN
    on some fitting device), the NaN device with the fewest tasks queued instead (exploration)."""
    best, best_score, explore = -1, np.inf, -1
    for d in range(feasible.shape[1]):
        if not feasible[task, d]:
            continue
        length = estimate[task, d]
        if np.isnan(length):
            if explore < 0 or ends[COUNT, d] < ends[COUNT, explore]:
                explore = d
            continue
        score = max(now, believed_end[d]) + load[d] + length
        if rule != DM:
            score += there[d] - now
        if score < best_score:
            best, best_score = d, score
    return explore if explore >= 0 else best


@njit(cache=True, inline="always")
def _acceleration(
    task: int, feasible: np.ndarray, estimate: np.ndarray, is_gpu: np.ndarray
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
        if is_gpu[d]:
            gpu = min(gpu, length)
        else:
            cpu = min(cpu, length)
    if cpu == np.inf or gpu == np.inf or cpu == gpu:
        return 1.0
    return cpu / gpu if gpu > 0 else np.inf


@njit(cache=True, inline="always")
def _make_ready(
    task: int, feasible: np.ndarray, is_gpu: np.ndarray, ready: np.ndarray,
    ready_size: np.ndarray, key: np.ndarray, rank: np.ndarray,
) -> None:  # fmt: skip
    """heteroprio: into the heap of each kind of device the task fits."""
    fits_core, fits_gpu = False, False
    for d in range(feasible.shape[1]):
        if feasible[task, d]:
            if is_gpu[d]:
                fits_gpu = True
            else:
                fits_core = True
    for kind, fits in ((CORES, fits_core), (GPUS, fits_gpu)):
        if not fits:
            continue
        heap, order = ready[kind], key[kind]
        position = ready_size[kind, HEAP_SIZE]
        heap[position] = task
        ready_size[kind, HEAP_SIZE] = position + 1
        while position > 0:
            parent = (position - 1) // 2
            if not kernel._before(heap[position], heap[parent], order, rank):
                break
            heap[position], heap[parent] = heap[parent], heap[position]
            position = parent


# --- idle devices take work ---------------------------------------------------------------------


@njit(cache=True, inline="always")
def _take(
    device: int, rule: int, feasible: np.ndarray, estimate: np.ndarray, load: np.ndarray,
    links: np.ndarray, ends: np.ndarray,
) -> tuple[int, int]:  # fmt: skip
    """(task, queue): the task idle `device` takes now, unlinked from its queue, or (-1, -1);
    all rules but heteroprio (_heteroprio_pick)."""
    central = feasible.shape[1]
    if rule == EAGER:
        task, queue = _first_fitting(device, central, feasible, links, ends), central
    elif ends[COUNT, device] > 0:  # its own queue: the data left when the task was pushed
        task = ends[HEAD, device]
        _unlink(device, task, links, ends)
        if rule != WORK_STEALING:
            load[device] -= _believed(estimate[task, device])
        return task, device
    elif rule == WORK_STEALING:
        task, queue = _steal(device, feasible, links, ends)
    else:
        return -1, -1
    if task >= 0:
        _unlink(queue, task, links, ends)
    return task, queue


@njit(cache=True, inline="always")
def _first_fitting(
    device: int, queue: int, feasible: np.ndarray, links: np.ndarray, ends: np.ndarray
) -> int:
    """The oldest task of `queue` that fits `device`, or -1."""
    task = ends[HEAD, queue]
    while task >= 0 and not feasible[task, device]:
        task = links[AFTER, task]
    return task


@njit(cache=True, inline="always")
def _steal(
    device: int, feasible: np.ndarray, links: np.ndarray, ends: np.ndarray
) -> tuple[int, int]:
    """(task, victim): the oldest task `device` fits in the queue with the most waiting tasks
    (lowest index on ties), trying the next fullest queue while the fuller ones hold none it
    fits; (-1, -1) if none."""
    m = feasible.shape[1]
    last_count, last_victim = np.iinfo(np.int64).max, -1
    while True:
        victim = -1
        for v in range(m):
            count = ends[COUNT, v]
            if v == device or count == 0:
                continue
            if count > last_count or (count == last_count and v <= last_victim):
                continue  # tried already
            if victim < 0 or count > ends[COUNT, victim]:
                victim = v
        if victim < 0:
            return -1, -1
        task = _first_fitting(device, victim, feasible, links, ends)
        if task >= 0:
            return task, victim
        last_count, last_victim = ends[COUNT, victim], victim


@njit(cache=True, inline="always")
def _heteroprio_pick(
    device: int, feasible: np.ndarray, rank: np.ndarray, gpu: bool, links: np.ndarray,
    ends: np.ndarray, ready: np.ndarray, ready_size: np.ndarray, key: np.ndarray,
    device_of: np.ndarray,
) -> int:  # fmt: skip
    """The ready task `device` fits with the least acceleration factor (a CPU core) or the
    greatest (a GPU); ties: higher priority (lower rank), then lower index. -1 if none. The top
    of its kind's heap, taken tasks dropped, if it fits `device` (the heap holds every ready task
    that fits a device of the kind); else (a device of the kind with less memory) a pass over
    the central queue."""
    kind = GPUS if gpu else CORES
    heap, size, order = ready[kind], ready_size[kind], key[kind]
    while size[HEAP_SIZE] > 0 and device_of[heap[0]] >= 0:
        kernel._heap_pop(heap, size, order, rank)
    if size[HEAP_SIZE] == 0:
        return -1
    if feasible[heap[0], device]:
        return kernel._heap_pop(heap, size, order, rank)
    best = -1
    task = ends[HEAD, feasible.shape[1]]
    while task >= 0:
        if feasible[task, device] and (best < 0 or kernel._before(task, best, order, rank)):
            best = task
        task = links[AFTER, task]
    return best


@njit(cache=True, inline="always")
def _spoliate(
    device: int, now: float, feasible: np.ndarray, estimate: np.ndarray, is_gpu: np.ndarray,
    running: np.ndarray, believed_end: np.ndarray, data_at: np.ndarray, counters: np.ndarray,
    parent_ptr: np.ndarray, dag: Dag, platform: Platform, output: np.ndarray,
) -> int:  # fmt: skip
    """heteroprio: idle `device`, with nothing it can take, aborts the task running on a device
    of the other kind that it would finish (its data moved, its believed time) before that
    task's believed end there, the latest such end first (lowest index on ties); returns that
    task, its data on the way, or -1. A NaN belief never spoliates nor is spoliated."""
    victim, victim_there = -1, 0.0
    for e in range(is_gpu.shape[0]):
        task = running[e]
        if task < 0 or is_gpu[e] == is_gpu[device] or not feasible[task, device]:
            continue
        length = estimate[task, device]
        if np.isnan(length):
            continue
        there = now
        if parent_ptr[task + 1] > parent_ptr[task]:
            there = _inputs_there(task, device, now, dag, platform, output)
        if there + length < believed_end[e] and (
            victim < 0 or believed_end[e] > believed_end[victim]
        ):
            victim, victim_there = e, there
    if victim < 0:
        return -1
    task = running[victim]
    running[victim], believed_end[victim] = -1, 0.0
    counters[ABORTED] += 1
    data_at[task] = victim_there
    return task
