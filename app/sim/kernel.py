"""The engine's event loop, compiled with numba: the rules engine.py describes, at well under a
microsecond per decision.

engine.py builds three named tuples of named groups — `Model` (the problem: `Tasks`, `Dag`,
`Platform`), `Rules` (how the policy decides, with `Fixed`, `Splits`, `Bandit`) and `State`
(`Devices`, `Placements`, `Order`, counters) — and `advance` takes up to `steps` decisions, so
progress can be reported (and the run cancelled) between chunks. A helper takes the groups it
reads, whole, so two arrays of the same type cannot be swapped by position.

What a group costs (measured December 2026, numba 0.68, bench/README.md): numba counts a
reference for every array handed to a compiled function or read out of a tuple, so a helper
called per decision with whole groups paid a dozen more reference counts than one called with
the arrays it reads: the engine ran 1.17x slower. The helpers are therefore inlined by numba
(`inline="always"`), and a loop reads a group's arrays once, before it. Inlining does not make a
group free: a group handed to an inlined helper, or an array read out of one, still counts a
reference per array each time that code runs (an atomic increment and decrement). So the path
every independent task takes — its data-ready times, the rule, the commit of a whole task —
touches arrays read before the loop and hands groups only to the branches that need them
(insertion's busy intervals, splits, DAG edges): round_robin went from ~220 to ~32 ns per task,
mct from ~485 to ~93 (December 2026, bench/README.md). At the boundary, each call from Python
types and unboxes every array of the three tuples: about 15 µs per `advance` call, so
engine.py calls it once per run unless progress is reported (then once per 4,096 decisions).

Decision rules (a policy picks one and fills its arrays, see policies/):
FIXED replays given placements; ROUND_ROBIN takes devices in turn; UNIFORM picks a random
feasible device from pre-drawn numbers; FASTEST the device with the least estimated time;
EFT the device with the earliest finish under the estimated times (optionally preferring
`allowed` devices, optionally also CPU/GPU splits from precomputed tables, optionally choosing by
finish + a per-(task, device) `bias`: PEFT's look-ahead, CPOP's critical-path processor); BANDIT
the rl agent; EARLIEST_AVAILABLE the device where the task could start first, whatever it costs
there (OLB); LOOKAHEAD the device whose tentative placement lets the task's children finish
first (lookahead HEFT, `_lookahead`). MIN_MIN, MAX_MIN and SUFFERAGE map batches of waiting
tasks at mapping events: `advance_batches` (see its docstring for the event rule). The runtime
schedulers' rules (EAGER ... HETEROPRIO: pull-based queues, tasks ready when their parents have
completed) run in their own event loop, kernel_runtime.advance_runtime.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

FIXED, ROUND_ROBIN, UNIFORM, FASTEST, EFT, BANDIT = range(6)
EARLIEST_AVAILABLE, MIN_MIN, MAX_MIN, SUFFERAGE = range(6, 10)
LOOKAHEAD = 16  # after kernel_runtime's rules (10-15): a Rule value is unique

# Why `advance` stopped early (counters[ERROR]), with the task (counters[ERROR_TASK]).
OK, NO_SUCH_DEVICE, DOES_NOT_FIT, SPLIT_NEEDS_GPU_AND_CPU, SPLIT_DOES_NOT_FIT = range(5)
# Busy intervals (insertion policies) live in (devices, capacity) arrays: `advance` stops with
# NEEDS_SPACE before a decision could overflow them; the caller grows them and resumes.
NEEDS_SPACE = -1

# counters: decisions taken, tasks in the heap, round-robin turn, bandit steps, error, its task
DECIDED, HEAP_SIZE, TURN, STEPS, ERROR, ERROR_TASK = range(6)

# The rl agent's actions, in the order its options are compared.
CPU_ACTION, GPU_ACTION, SPLIT_ACTION = range(3)
# Recursive least squares without forgetting: the tasks of a run come from one distribution, and
# forgetting winds the covariance up along directions the (correlated) features rarely excite.

# The kernel's inputs and state, in named groups passed whole to the helpers (a helper takes the
# groups it reads, never a run of same-typed arrays by position). Shapes: n tasks, m devices,
# e edges; times in seconds, memory in MB. A group a rule does not use holds zero-size arrays,
# never read: the rule (and the flags `explicit_edges`, `has_splits`, `independent`) say which
# are used, and engine.py checks the shapes of those before the first call.

Tasks = namedtuple("Tasks", "arrival memory exec_time feasible splittable")
"""arrival (n,) s; memory (n,) MB; exec_time (n, m) the true seconds the engine executes;
feasible (n, m) bool, the task's data fits the device; splittable: the cost model allows CPU/GPU
splits (problem.py)."""

Dag = namedtuple(
    "Dag", "parent_ptr parent_idx edge_data edge_cost explicit_edges child_ptr child_idx"
)
"""The dependencies, CSR both ways: a task's parent edges are parent_ptr[i]:parent_ptr[i + 1]
of parent_idx (e,), edge_data (e,) MB and, when `explicit_edges`, edge_cost (e,) s (the
literature's given transfer times; else zero-size); child_ptr (n + 1,), child_idx (e,)."""

Platform = namedtuple("Platform", "is_gpu latency bandwidth memory cpus gpus")
"""The devices: is_gpu (m,) bool; latency (m,) s and bandwidth (m,) MB/s of the link to host
memory; memory (m,) MB; the indices of the CPU cores (cpus) and of the GPUs (gpus)."""

Model = namedtuple("Model", "tasks dag platform")
"""The problem the engine executes: `Tasks`, `Dag`, `Platform`."""

Fixed = namedtuple("Fixed", "device partner fraction")
"""FIXED's placements, (n,) each: device, partner (-1: whole task), GPU share of a split."""

Splits = namedtuple("Splits", "group_ptr group_devices pair_gpu_group pair_cpu_group share time")
"""decision.SplitTables as the kernel reads it: share and time are (pairs, n)."""

Bandit = namedtuple("Bandit", "features explore_draws action_draws weights covariance")
"""decision.BanditArrays: features (n, k), the draws (n,), weights (3, k) and covariance
(3, k, k), updated in place."""

Rules = namedtuple("Rules", "rule rank estimate allowed draws fixed has_splits splits bandit bias")
"""How the policy decides: `rule` (FIXED..BANDIT); rank (n,), lower first among released tasks;
estimate (n, m) the seconds it believes; allowed (m,) bool, EFT's preferred devices (all by
default); draws (n,) UNIFORM's uniforms; `Fixed` for FIXED; EFT also weighs `Splits` when
`has_splits`; `Bandit` for BANDIT; bias (n, m) s, or zero-size: EFT picks the whole-task device
by least finish + bias[task, d] (+inf: never that device) and records the unbiased times."""

Devices = namedtuple("Devices", "insertion free_at busy_start busy_end busy_count")
"""When each device is busy: free_at (m,) s, the end of its last task; with `insertion` also its
busy intervals, sorted, busy_start/busy_end (m, capacity) s of which busy_count (m,) are used
(without, those arrays are never read)."""

Placements = namedtuple("Placements", "device partner fraction start end output")
"""The schedule being built, (n,) each: device, partner (-1: whole task), GPU fraction, start and
end s, and the device that holds the output."""

Order = namedtuple("Order", "independent sequence heap pending")
"""Which task is decided next: `independent` tasks in the precomputed `sequence` (n,); else
released tasks wait in `heap` (n,), pending (n,) counts each task's unplaced parents."""

State = namedtuple("State", "devices placements order counters")
"""What `advance` changes: `Devices`, `Placements`, `Order` and counters (DECIDED..ERROR_TASK)."""


@njit(cache=True)
def advance(model: Model, rules: Rules, state: State, steps: int) -> int:
    """Take up to `steps` decisions; returns how many have been taken in all. Stops early with
    counters[ERROR] set when a FIXED placement breaks a rule or interval space runs out."""
    tasks, dag, platform = model
    devices, placed, order, counters = state
    n, m = tasks.exec_time.shape
    # Each member read from a group inside the loop would cost a reference count per decision.
    feasible, estimate, rule = tasks.feasible, rules.estimate, rules.rule
    arrival, rank, allowed, draws = tasks.arrival, rules.rank, rules.allowed, rules.draws
    fixed, has_splits, splits, bandit = rules.fixed, rules.has_splits, rules.splits, rules.bandit
    bias = rules.bias
    has_bias = bias.shape[0] > 0
    insertion, free_at, busy_count = devices.insertion, devices.free_at, devices.busy_count
    independent, sequence, heap = order.independent, order.sequence, order.heap
    device_of, partner_of, fraction_of, start, end, output_of = placed
    exec_time, is_gpu = tasks.exec_time, platform.is_gpu
    ready = np.empty(m)
    capacity = devices.busy_start.shape[1]
    for _ in range(steps):
        if counters[DECIDED] == n:
            break
        if insertion and busy_count.max() >= capacity - 1:
            counters[ERROR] = NEEDS_SPACE
            break
        if independent:  # no inputs to wait for: the data is ready everywhere at arrival
            task = sequence[counters[DECIDED]]
            for d in range(m):
                ready[d] = arrival[task]
        else:
            task = _heap_pop(heap, counters, arrival, rank)
            _data_ready(task, ready, arrival, dag, platform, placed)
        partner, share, action = -1, 0.0, 0
        if rule == BANDIT:
            device, partner, share, action = _bandit(
                task, ready, tasks, platform, free_at, bandit, counters[STEPS]
            )
        elif rule == FIXED:
            device, partner, share = fixed.device[task], fixed.partner[task], fixed.fraction[task]
        elif rule == ROUND_ROBIN:
            device = _round_robin(task, feasible, counters)
        elif rule == UNIFORM:
            device = _uniform(task, feasible, draws[task])
        elif rule == FASTEST:
            device = _fastest(task, feasible, estimate, free_at)
        elif rule == EARLIEST_AVAILABLE:
            device = _earliest_available(task, ready, feasible, free_at)
        elif rule == LOOKAHEAD:
            device = _lookahead(task, ready, model, rules, devices, placed)
        else:
            device, finish = _best_whole(
                task, ready, feasible, estimate, allowed, devices, bias, has_bias
            )
            if device < 0:  # no preferred device fits: any device will do
                device, finish = _best_whole(
                    task, ready, feasible, estimate, feasible[task], devices, bias, has_bias
                )
            if has_splits:
                gpu, cpu, split_share, split_finish = _best_split(task, ready, splits, free_at)
                if gpu >= 0 and split_finish < finish:
                    device, partner, share = gpu, cpu, split_share
        if partner >= 0 and 0.0 < share < 1.0:
            error = _check_split(task, device, partner, share, tasks, platform)
            if error == OK:
                _commit_split(task, device, partner, share, ready, tasks, platform, devices, placed)
        else:
            if partner >= 0:  # a "split" of 0 or 1 is a whole task
                device = device if share >= 1.0 else partner
            error = OK if 0 <= device < m else NO_SUCH_DEVICE
            if error == OK and not feasible[task, device]:
                error = DOES_NOT_FIT
            if error == OK:
                # _commit_whole, written out: a group handed to a helper on this path would cost
                # a reference count per array and task (the module's docstring).
                duration = exec_time[task, device]
                if insertion:
                    begin = _start_on(device, ready[device], duration, devices)
                    _occupy(device, begin, begin + duration, devices)
                else:
                    begin = _queue_start(device, ready[device], free_at)
                    free_at[device] = max(free_at[device], begin + duration)
                device_of[task], partner_of[task], output_of[task] = device, -1, device
                fraction_of[task] = 1.0 if is_gpu[device] else 0.0
                start[task], end[task] = begin, begin + duration
        if error != OK:
            counters[ERROR], counters[ERROR_TASK] = error, task
            break
        if rule == BANDIT:
            duration = end[task] - start[task]
            _rls_update(bandit.weights[action], bandit.covariance[action], bandit.features[task],
                        np.log(max(duration, 1e-9)))  # fmt: skip
            counters[STEPS] += 1
        if not independent:
            _release_children(task, dag, order, counters, arrival, rank)
        counters[DECIDED] += 1
    return counters[DECIDED]


# --- decision order ----------------------------------------------------------------------------
# With dependencies, released tasks (arrived, all parents placed) wait in a binary min-heap on
# (arrival, rank, index); the caller starts it with the parentless tasks, sorted (a sorted array
# is a valid heap).


@njit(cache=True, inline="always")
def _before(a: int, b: int, arrival: np.ndarray, rank: np.ndarray) -> bool:
    """Task a is decided before task b: earlier arrival, then higher priority, then index."""
    if arrival[a] != arrival[b]:
        return arrival[a] < arrival[b]
    if rank[a] != rank[b]:
        return rank[a] < rank[b]
    return a < b


@njit(cache=True, inline="always")
def _release_children(
    task: int, dag: Dag, order: Order, counters: np.ndarray, arrival: np.ndarray, rank: np.ndarray
) -> None:
    heap, pending = order.heap, order.pending
    for k in range(dag.child_ptr[task], dag.child_ptr[task + 1]):
        child = dag.child_idx[k]
        pending[child] -= 1
        if pending[child] == 0:
            position = counters[HEAP_SIZE]
            heap[position] = child
            counters[HEAP_SIZE] = position + 1
            while position > 0:
                parent = (position - 1) // 2
                if not _before(heap[position], heap[parent], arrival, rank):
                    break
                heap[position], heap[parent] = heap[parent], heap[position]
                position = parent


@njit(cache=True, inline="always")
def _heap_pop(heap: np.ndarray, counters: np.ndarray, arrival: np.ndarray, rank: np.ndarray) -> int:
    size = counters[HEAP_SIZE] - 1
    top = heap[0]
    heap[0] = heap[size]
    counters[HEAP_SIZE] = size
    parent = 0
    while True:
        left, right, first = 2 * parent + 1, 2 * parent + 2, parent
        if left < size and _before(heap[left], heap[first], arrival, rank):
            first = left
        if right < size and _before(heap[right], heap[first], arrival, rank):
            first = right
        if first == parent:
            return top
        heap[parent], heap[first] = heap[first], heap[parent]
        parent = first


# --- data and devices --------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _data_ready(
    task: int, ready: np.ndarray, arrival: np.ndarray, dag: Dag, platform: Platform,
    placed: Placements,
) -> None:  # fmt: skip
    """ready[d]: when all the task's inputs could be on device d (its arrival, or later); each
    edge's transfer as costs.edge_transfer computes it."""
    is_gpu, latency, bandwidth = platform.is_gpu, platform.latency, platform.bandwidth
    explicit_edges = dag.explicit_edges
    m = ready.shape[0]
    for d in range(m):
        ready[d] = arrival[task]
    for edge in range(dag.parent_ptr[task], dag.parent_ptr[task + 1]):
        parent = dag.parent_idx[edge]
        source = placed.output[parent]
        data = dag.edge_data[edge]
        out_of = 0.0
        if not explicit_edges and is_gpu[source]:
            out_of = latency[source] + data / bandwidth[source]
        for d in range(m):
            if d == source:
                transfer = 0.0
            elif explicit_edges:
                transfer = dag.edge_cost[edge]
            elif is_gpu[d]:
                transfer = (latency[d] + data / bandwidth[d]) + out_of
            else:
                transfer = out_of
            arrives = placed.end[parent] + transfer
            if arrives > ready[d]:
                ready[d] = arrives


@njit(cache=True, inline="always")
def _queue_start(device: int, ready: float, free_at: np.ndarray) -> float:
    """The earliest start >= ready at the end of `device`'s queue (free_at: devices.free_at)."""
    free = free_at[device]
    return ready if ready >= free else free


@njit(cache=True, inline="always")
def _start_on(device: int, ready: float, duration: float, devices: Devices) -> float:
    """The earliest start >= ready on `device`: after its queue, or in an idle gap."""
    begin = _queue_start(device, ready, devices.free_at)
    if devices.insertion and begin > ready:
        begin = _gap_start(device, ready, duration, devices)
    return begin


@njit(cache=True, inline="always")
def _gap_start(device: int, ready: float, duration: float, devices: Devices) -> float:
    """With `insertion`, on a device busy at `ready`: the earliest start >= ready in an idle gap
    long enough, else at the end of its queue."""
    busy_start, busy_end = devices.busy_start, devices.busy_end
    count = devices.busy_count[device]
    candidate = ready
    for k in range(np.searchsorted(busy_end[device, :count], ready, side="right"), count):
        if candidate + duration <= busy_start[device, k]:
            return candidate
        if busy_end[device, k] > candidate:
            candidate = busy_end[device, k]
    return candidate


@njit(cache=True, inline="always")
def _occupy(device: int, begin: float, finish: float, devices: Devices) -> None:
    free_at = devices.free_at
    if finish > free_at[device]:
        free_at[device] = finish
    if devices.insertion:
        _insert_busy(device, begin, finish, devices)


@njit(cache=True, inline="always")
def _insert_busy(device: int, begin: float, finish: float, devices: Devices) -> None:
    """Record the busy interval [begin, finish) among the device's sorted intervals."""
    busy_start, busy_end, busy_count = devices.busy_start, devices.busy_end, devices.busy_count
    count = busy_count[device]
    position = np.searchsorted(busy_start[device, :count], begin, side="right")
    for k in range(count, position, -1):
        busy_start[device, k] = busy_start[device, k - 1]
        busy_end[device, k] = busy_end[device, k - 1]
    busy_start[device, position], busy_end[device, position] = begin, finish
    busy_count[device] = count + 1


@njit(cache=True)
def split_time(cpu_time: float, gpu_time: float, latency: float, share: float) -> float:
    """T(f): see costs.py."""
    gpu_part = latency + share * (gpu_time - latency) if share > 0 else 0.0
    return max(gpu_part, (1.0 - share) * cpu_time)


@njit(cache=True, inline="always")
def _check_split(
    task: int, gpu: int, cpu: int, share: float, tasks: Tasks, platform: Platform
) -> int:
    m = tasks.exec_time.shape[1]
    if not (0 <= gpu < m and 0 <= cpu < m):
        return NO_SUCH_DEVICE
    is_gpu = platform.is_gpu
    if not tasks.splittable or not is_gpu[gpu] or is_gpu[cpu]:
        return SPLIT_NEEDS_GPU_AND_CPU
    memory = tasks.memory[task]
    slack = 1e-12 * max(1.0, memory)
    if share * memory > platform.memory[gpu] + slack:
        return SPLIT_DOES_NOT_FIT
    if (1.0 - share) * memory > platform.memory[cpu] + slack:
        return SPLIT_DOES_NOT_FIT
    return OK


@njit(cache=True, inline="always")
def _commit_whole(
    task: int, device: int, ready: np.ndarray, tasks: Tasks, platform: Platform,
    devices: Devices, placed: Placements,
) -> None:  # fmt: skip
    """Run the whole task on `device` at its earliest start under the true duration."""
    duration = tasks.exec_time[task, device]
    begin = _start_on(device, ready[device], duration, devices)
    _occupy(device, begin, begin + duration, devices)
    placed.device[task], placed.partner[task], placed.output[task] = device, -1, device
    placed.fraction[task] = 1.0 if platform.is_gpu[device] else 0.0
    placed.start[task], placed.end[task] = begin, begin + duration


@njit(cache=True, inline="always")
def _commit_split(
    task: int, gpu: int, cpu: int, share: float, ready: np.ndarray, tasks: Tasks,
    platform: Platform, devices: Devices, placed: Placements,
) -> None:  # fmt: skip
    """Run `share` on the GPU and the rest on the core, both held until the slower part ends;
    the output meets in host memory (with the core)."""
    exec_time, free_at = tasks.exec_time, devices.free_at
    duration = split_time(exec_time[task, cpu], exec_time[task, gpu], platform.latency[gpu], share)
    begin = max(max(ready[gpu], ready[cpu]), max(free_at[gpu], free_at[cpu]))
    for device in (gpu, cpu):
        _occupy(device, begin, begin + duration, devices)
    placed.device[task], placed.partner[task], placed.output[task] = gpu, cpu, cpu
    placed.fraction[task] = share
    placed.start[task], placed.end[task] = begin, begin + duration


# --- the rules ---------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _round_robin(task: int, feasible: np.ndarray, counters: np.ndarray) -> int:
    m = feasible.shape[1]
    device = counters[TURN]
    while not feasible[task, device]:
        device = (device + 1) % m
    counters[TURN] = (device + 1) % m
    return device


@njit(cache=True, inline="always")
def _uniform(task: int, feasible: np.ndarray, draw: float) -> int:
    count = 0
    for d in range(feasible.shape[1]):
        if feasible[task, d]:
            count += 1
    pick = int(draw * count)
    for d in range(feasible.shape[1]):
        if feasible[task, d]:
            if pick == 0:
                return d
            pick -= 1
    return -1


@njit(cache=True, inline="always")
def _fastest(task: int, feasible: np.ndarray, estimate: np.ndarray, free_at: np.ndarray) -> int:
    """Least estimated time; among (nearly) equally fast devices, the one free first."""
    least = np.inf
    for d in range(feasible.shape[1]):
        if feasible[task, d] and estimate[task, d] < least:
            least = estimate[task, d]
    best, best_free = -1, np.inf
    for d in range(feasible.shape[1]):
        fast = estimate[task, d] <= least * (1 + 1e-9)
        if feasible[task, d] and fast and free_at[d] < best_free:
            best, best_free = d, free_at[d]
    return best


@njit(cache=True, inline="always")
def _earliest_available(
    task: int, ready: np.ndarray, feasible: np.ndarray, free_at: np.ndarray
) -> int:
    """The fitting device where the task could start first (its data there, the device free),
    whatever the task costs there; among devices free by then, the one idle longest."""
    best, best_start, best_free = -1, np.inf, np.inf
    for d in range(feasible.shape[1]):
        begin = max(ready[d], free_at[d])
        if feasible[task, d] and (
            begin < best_start or (begin == best_start and free_at[d] < best_free)
        ):
            best, best_start, best_free = d, begin, free_at[d]
    return best


@njit(cache=True, inline="always")
def _best_whole(
    task: int, ready: np.ndarray, feasible: np.ndarray, estimate: np.ndarray, allowed: np.ndarray,
    devices: Devices, bias: np.ndarray, has_bias: bool,
) -> tuple[int, float]:  # fmt: skip
    """The allowed, fitting device where the whole task finishes first (under `estimate`), and
    that finish; with `has_bias`, the one with the least finish + bias[task, d] (the finish
    returned stays unbiased). Ties go to the lower index."""
    best, best_finish, best_score = -1, np.inf, np.inf
    insertion, free_at = devices.insertion, devices.free_at
    for d in range(feasible.shape[1]):
        if feasible[task, d] and allowed[d]:
            duration = estimate[task, d]
            begin = _queue_start(d, ready[d], free_at)
            if insertion and begin > ready[d]:  # busy then: maybe an idle gap (_start_on)
                begin = _gap_start(d, ready[d], duration, devices)
            score = begin + duration + bias[task, d] if has_bias else begin + duration
            if score < best_score:
                best, best_finish, best_score = d, begin + duration, score
    return best, best_finish


@njit(cache=True, inline="always")
def _earliest_of_group(group: int, ready: np.ndarray, splits: Splits, free_at: np.ndarray) -> int:
    best, best_available = -1, np.inf
    for k in range(splits.group_ptr[group], splits.group_ptr[group + 1]):
        d = splits.group_devices[k]
        available = max(ready[d], free_at[d])
        if available < best_available:
            best, best_available = d, available
    return best


@njit(cache=True, inline="always")
def _best_split(
    task: int, ready: np.ndarray, splits: Splits, free_at: np.ndarray
) -> tuple[int, int, float, float]:
    """The best split over devices idle when the data is ready (see policies/splits.py):
    (gpu, cpu, share, finish), gpu -1 if none."""
    best_gpu, best_cpu, best_share, best_finish = -1, -1, 0.0, np.inf
    for pair in range(splits.time.shape[0]):
        time = splits.time[pair, task]
        if not np.isfinite(time):
            continue
        gpu = _earliest_of_group(splits.pair_gpu_group[pair], ready, splits, free_at)
        cpu = _earliest_of_group(splits.pair_cpu_group[pair], ready, splits, free_at)
        data_there = max(ready[gpu], ready[cpu])
        start = max(data_there, max(free_at[gpu], free_at[cpu]))
        if start > data_there:
            continue  # one of the two is still busy with queued work
        if start + time < best_finish:
            best_gpu, best_cpu = gpu, cpu
            best_share, best_finish = splits.share[pair, task], start + time
    return best_gpu, best_cpu, best_share, best_finish


# --- lookahead HEFT (see policies/lookahead.py for the rule and where it departs from the paper) -

Ahead = namedtuple("Ahead", "child edge ready free")
"""LOOKAHEAD's scratch for a task with c children: child (c,) its children in decision order,
edge (c,) the index of the task's edge among each child's parent edges, ready (c, m) s when each
child's inputs from its placed parents could be on each device, free (m,) s the devices'
tentative queue ends. Allocated per decision, in the LOOKAHEAD branch only: held across the loop
(sized once per call) it made the EFT path ~8 % slower (bench/README.md)."""


@njit(cache=True, inline="always")
def _ahead_scratch(children: int, m: int) -> Ahead:
    return Ahead(
        np.empty(children, dtype=np.int64),
        np.empty(children, dtype=np.int64),
        np.empty((children, m)),
        np.empty(m),
    )


# Not inlined, unlike the other rules: inlined, its loops made `advance` slower for every rule
# (eft and mct 4-6 % on the layered DAG of bench/sim.py, interleaved runs, bench/README.md); a
# call costs a few reference counts per decision against the rule's ~10 µs.
@njit(cache=True)
def _lookahead(
    task: int, ready: np.ndarray, model: Model, rules: Rules, devices: Devices,
    placed: Placements,
) -> int:  # fmt: skip
    """The fitting device p with the least score: t placed at its insertion-based earliest finish
    on p (under `estimate`), then each child, in decision order, at its earliest finish over its
    fitting devices at the end of their tentative queues, its data from t on p and from its
    placed parents; the score is the largest of those finishes (t's own without children).
    Ties: t's own earlier finish, then the lower index. Costs O(c m) per candidate device."""
    tasks, dag, platform = model
    feasible, estimate, free_at = tasks.feasible, rules.estimate, devices.free_at
    ahead = _ahead_scratch(dag.child_ptr[task + 1] - dag.child_ptr[task], feasible.shape[1])
    count = _children_in_order(task, dag, rules.rank, ahead)
    for k in range(count):
        _placed_parents_ready(ahead.child[k], ahead.ready[k], tasks.arrival, dag, platform, placed)
    child, edge, child_ready, free = ahead.child, ahead.edge, ahead.ready, ahead.free
    best, best_score, best_finish = -1, np.inf, np.inf
    for p in range(feasible.shape[1]):
        if not feasible[task, p]:
            continue
        duration = estimate[task, p]
        finish = _start_on(p, ready[p], duration, devices) + duration
        score = finish
        if count > 0:
            free[:] = free_at
            free[p] = max(free[p], finish)
        for k in range(count):
            c = child[k]
            where, earliest = -1, np.inf
            for d in range(feasible.shape[1]):
                if feasible[c, d]:
                    arrives = finish + _transfer(edge[k], p, d, dag, platform)
                    begin = max(max(child_ready[k, d], arrives), free[d])
                    if begin + estimate[c, d] < earliest:
                        where, earliest = d, begin + estimate[c, d]
            if where >= 0:
                free[where] = earliest
                score = max(score, earliest)
        if score < best_score or (score == best_score and finish < best_finish):
            best, best_score, best_finish = p, score, finish
    return best


@njit(cache=True, inline="always")
def _children_in_order(task: int, dag: Dag, rank: np.ndarray, ahead: Ahead) -> int:
    """Fill ahead.child and ahead.edge with the task's children in the engine's decision order
    (rank, then index); returns how many. An insertion sort, O(c^2) for c children: below the
    rule's own O(c m^2) per task while c <= m^2 (a fan-out of 144 on 12 devices)."""
    child, edge = ahead.child, ahead.edge
    count = 0
    for k in range(dag.child_ptr[task], dag.child_ptr[task + 1]):
        c = dag.child_idx[k]
        position = count
        while position > 0 and (
            rank[child[position - 1]] > rank[c]
            or (rank[child[position - 1]] == rank[c] and child[position - 1] > c)
        ):
            child[position], edge[position] = child[position - 1], edge[position - 1]
            position -= 1
        child[position] = c
        for e in range(dag.parent_ptr[c], dag.parent_ptr[c + 1]):
            if dag.parent_idx[e] == task:
                edge[position] = e
        count += 1
    return count


@njit(cache=True, inline="always")
def _placed_parents_ready(
    task: int, ready: np.ndarray, arrival: np.ndarray, dag: Dag, platform: Platform,
    placed: Placements,
) -> None:  # fmt: skip
    """ready[d]: when the inputs from the task's placed parents could be on device d (its
    arrival, or later); parents not yet placed are ignored."""
    for d in range(ready.shape[0]):
        ready[d] = arrival[task]
    for edge in range(dag.parent_ptr[task], dag.parent_ptr[task + 1]):
        parent = dag.parent_idx[edge]
        if placed.device[parent] < 0:
            continue
        for d in range(ready.shape[0]):
            arrives = placed.end[parent] + _transfer(edge, placed.output[parent], d, dag, platform)
            if arrives > ready[d]:
                ready[d] = arrives


@njit(cache=True, inline="always")
def _transfer(edge: int, source: int, target: int, dag: Dag, platform: Platform) -> float:
    """Seconds the edge's data takes from device `source` to device `target`, as
    costs.edge_transfer computes it (and _data_ready, written out there for speed)."""
    if target == source:
        return 0.0
    if dag.explicit_edges:
        return dag.edge_cost[edge]
    data, is_gpu = dag.edge_data[edge], platform.is_gpu
    out_of = platform.latency[source] + data / platform.bandwidth[source] if is_gpu[source] else 0.0
    if is_gpu[target]:
        return (platform.latency[target] + data / platform.bandwidth[target]) + out_of
    return out_of


# --- the rl agent (see policies/rl.py for what it learns) ---------------------------------------


@njit(cache=True, inline="always")
def _bandit(
    task: int, ready: np.ndarray, tasks: Tasks, platform: Platform, free_at: np.ndarray,
    bandit: Bandit, steps: int,
) -> tuple[int, int, float, int]:  # fmt: skip
    """The agent's placement: (device, partner, share, action)."""
    x, feasible, weights = bandit.features[task], tasks.feasible, bandit.weights
    cpus, gpus, latency, memory = platform.cpus, platform.gpus, platform.latency, platform.memory
    predicted = np.empty(3)
    for action in range(3):
        predicted[action] = np.exp(min(max(_dot(weights[action], x), -30.0), 30.0))
    device_of = np.full(3, -1)
    finish = np.full(3, np.inf)
    for action in (CPU_ACTION, GPU_ACTION):
        best_available = np.inf
        for d in cpus if action == CPU_ACTION else gpus:
            available = max(ready[d], free_at[d])
            if feasible[task, d] and available < best_available:
                device_of[action], best_available = d, available
        finish[action] = best_available + predicted[action]
    cpu, gpu, share = device_of[CPU_ACTION], device_of[GPU_ACTION], 0.0
    if cpu >= 0 and gpu >= 0 and tasks.splittable:
        share = _own_share(tasks.memory[task], memory[gpu], memory[cpu], predicted, latency[gpu])
        data_there = max(ready[gpu], ready[cpu])
        start = max(data_there, max(free_at[gpu], free_at[cpu]))
        if 0.0 < share < 1.0 and start <= data_there:
            finish[SPLIT_ACTION] = start + predicted[SPLIT_ACTION]
    # Epsilon-greedy: explore with eps_t = max(0.02, 0.3 / (1 + t / 500)), else the least
    # predicted finish.
    available = np.flatnonzero(np.isfinite(finish))
    if available.shape[0] == 0:  # unreachable while predictions stay finite; run somewhere
        return (cpu, -1, 0.0, CPU_ACTION) if cpu >= 0 else (gpu, -1, 0.0, GPU_ACTION)
    if bandit.explore_draws[task] < max(0.02, 0.3 / (1.0 + steps / 500.0)):
        action = available[int(bandit.action_draws[task] * available.shape[0])]
    else:
        action = available[np.argmin(finish[available])]
    if action == SPLIT_ACTION:
        return gpu, cpu, share, action
    return device_of[action], -1, 0.0, action


@njit(cache=True, inline="always")
def _own_share(
    memory: float, gpu_memory: float, cpu_memory: float, predicted: np.ndarray, latency: float
) -> float:
    """f* from the agent's own predicted CPU and GPU times, within both memories (costs.py)."""
    low, high = 0.0, 1.0
    if memory > 0:
        low = max(0.0, 1.0 - cpu_memory / memory)
        high = min(1.0, gpu_memory / memory)
    if low > high:
        return 0.0
    cpu_time, gpu_time = predicted[CPU_ACTION], predicted[GPU_ACTION]
    denominator = cpu_time + gpu_time - latency
    balanced = (cpu_time - latency) / denominator if denominator > 0 else 0.0
    return min(max(balanced, low), high)


@njit(cache=True, inline="always")
def _rls_update(w: np.ndarray, p: np.ndarray, x: np.ndarray, target: float) -> None:
    """One recursive-least-squares step towards w . x = target."""
    px = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        px[i] = _dot(p[i], x)
    gain = px / (1.0 + _dot(x, px))
    w += gain * (target - _dot(w, x))
    p -= np.outer(gain, px)


@njit(cache=True, inline="always")
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """a . b summed in index order. Not `@`, which calls BLAS: OpenBLAS picks its kernel for the
    CPU it runs on (SkylakeX, Haswell, ...), each summing in its own order, and the agent's
    schedules differed between machines (tests/unit/sim/test_engine.py's digests)."""
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


# --- batch mode: min-min, max-min, sufferage ----------------------------------------------------


@njit(cache=True)
def advance_batches(model: Model, rules: Rules, state: State, steps: int, limit: int) -> int:
    """MIN_MIN, MAX_MIN and SUFFERAGE (Maheswaran et al. 1999): map the waiting tasks together,
    one mapping event at a time, until at least `steps` decisions have been taken in all (an
    event is never cut); returns how many have been taken.

    The event rule: a mapping event happens at the first instant t when a task is waiting (it
    has arrived and, in a DAG, all its parents are placed) and a device is idle,
    t = max(earliest arrival among waiting tasks, earliest end of a device's queue). Its batch is
    the tasks waiting at t, at most `limit` of them in (arrival, rank, index) order; each is
    mapped at t, whole, at the end of a device's queue, the rule choosing the order: repeatedly
    the task whose best completion time (under `estimate`) is least (MIN_MIN), greatest
    (MAX_MIN), or furthest from its second best (SUFFERAGE) goes to its best device. Tasks that
    arrive while every device is busy wait for the next event, so they compete for the devices
    that free up; `limit` bounds an event's work to limit**2 * m completion times, so a run costs
    at most n * limit * m however many tasks wait (never quadratic in n)."""
    tasks, dag, platform = model
    devices, placed, order, counters = state
    n, m = tasks.exec_time.shape
    arrival, rank, free_at = tasks.arrival, rules.rank, devices.free_at
    batch = np.empty(limit, dtype=np.int64)
    ready = np.empty((limit, m))
    target = min(n, counters[DECIDED] + steps)
    while counters[DECIDED] < target:
        size = _next_batch(batch, arrival, rank, free_at, order, counters)
        for k in range(size):
            _data_ready(batch[k], ready[k], arrival, dag, platform, placed)
        while size > 0:
            k, device = _pick(rules, batch, size, ready, tasks.feasible, free_at)
            task = batch[k]
            _commit_whole(task, device, ready[k], tasks, platform, devices, placed)
            if not order.independent:
                _release_children(task, dag, order, counters, arrival, rank)
            counters[DECIDED] += 1
            for j in range(k, size - 1):  # keep the batch in order: ties go to the first
                batch[j] = batch[j + 1]
                ready[j] = ready[j + 1]
            size -= 1
    return counters[DECIDED]


@njit(cache=True, inline="always")
def _next_batch(
    batch: np.ndarray, arrival: np.ndarray, rank: np.ndarray, free_at: np.ndarray, order: Order,
    counters: np.ndarray,
) -> int:  # fmt: skip
    """Fill `batch` with the tasks of the next mapping event; returns how many."""
    limit, size = batch.shape[0], 0
    if order.independent:
        sequence, cursor = order.sequence, counters[DECIDED]
        event = max(free_at.min(), arrival[sequence[cursor]])
        while (
            size < limit
            and cursor + size < sequence.shape[0]
            and arrival[sequence[cursor + size]] <= event
        ):
            batch[size] = sequence[cursor + size]
            size += 1
    else:
        heap = order.heap
        event = max(free_at.min(), arrival[heap[0]])
        while size < limit and counters[HEAP_SIZE] > 0 and arrival[heap[0]] <= event:
            batch[size] = _heap_pop(heap, counters, arrival, rank)
            size += 1
    return size


@njit(cache=True, inline="always")
def _pick(
    rules: Rules, batch: np.ndarray, size: int, ready: np.ndarray, feasible: np.ndarray,
    free_at: np.ndarray,
) -> tuple[int, int]:  # fmt: skip
    """(position in the batch, device) of the task the batch rule maps next."""
    estimate, rule = rules.estimate, rules.rule
    best_k, best_device, best_key = -1, -1, -np.inf
    for k in range(size):
        task = batch[k]
        first, second, device = np.inf, np.inf, -1
        for d in range(feasible.shape[1]):
            if feasible[task, d]:
                finish = max(ready[k, d], free_at[d]) + estimate[task, d]
                if finish < first:
                    first, second, device = finish, first, d
                elif finish < second:
                    second = finish
        if rule == MIN_MIN:
            key = -first
        elif rule == MAX_MIN:
            key = first
        else:  # SUFFERAGE: inf when a single device fits the task
            key = second - first
        if best_k < 0 or key > best_key:
            best_k, best_device, best_key = k, device, key
    return best_k, best_device
