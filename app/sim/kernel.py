"""The engine's event loop, compiled with numba: the rules engine.py describes, at well under a
microsecond per decision.

The caller holds the arrays in three named tuples — `Model` (the problem: arrivals, DAG, costs,
devices), `Rules` (how the policy decides) and `State` (the schedule being built) — and `advance`
takes up to `steps` decisions, so progress can be reported (and the run cancelled) between
chunks. `advance` unpacks the tuples once; the helpers take the individual arrays they use,
because handing a tuple of arrays to a numba function costs more than the work itself.

Decision rules (a policy picks one and fills its arrays, see policies/):
FIXED replays given placements; ROUND_ROBIN takes devices in turn; UNIFORM picks a random
feasible device from pre-drawn numbers; FASTEST the device with the least estimated time;
EFT the device with the earliest finish under the estimated times (optionally preferring
`allowed` devices, optionally also CPU/GPU splits from precomputed tables); BANDIT the rl agent.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

FIXED, ROUND_ROBIN, UNIFORM, FASTEST, EFT, BANDIT = range(6)

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

Model = namedtuple(
    "Model",
    "arrival parent_ptr parent_idx edge_data edge_cost explicit_edges splittable exec_time "
    "feasible memory is_gpu latency bandwidth device_memory child_ptr child_idx",
)
Rules = namedtuple(
    "Rules",
    "rule insertion rank estimate allowed draws fixed_device fixed_partner fixed_fraction "
    "group_ptr group_devices pair_gpu_group pair_cpu_group pair_share pair_time "
    "features explore_draws action_draws weights covariance cpus gpus",
)
State = namedtuple(
    "State",
    "free_at device partner fraction start end output counters order heap pending "
    "busy_start busy_end busy_count",
)


@njit(cache=True)
def advance(model: Model, rules: Rules, state: State, steps: int) -> int:
    """Take up to `steps` decisions; returns how many have been taken in all. Stops early with
    counters[ERROR] set when a FIXED placement breaks a rule or interval space runs out."""
    (arrival, parent_ptr, parent_idx, edge_data, edge_cost, explicit_edges, splittable,
     exec_time, feasible, memory, is_gpu, latency, bandwidth, device_memory, child_ptr,
     child_idx) = model  # fmt: skip
    (rule, insertion, rank, estimate, allowed, draws, fixed_device, fixed_partner,
     fixed_fraction, group_ptr, group_devices, pair_gpu_group, pair_cpu_group, pair_share,
     pair_time, features, explore_draws, action_draws, weights, covariance, cpus,
     gpus) = rules  # fmt: skip
    (free_at, device_of, partner_of, fraction_of, start_of, end_of, output_of, counters, order,
     heap, pending, busy_start, busy_end, busy_count) = state  # fmt: skip
    n, m = exec_time.shape
    ready = np.empty(m)
    capacity = busy_start.shape[1]
    independent = order.shape[0] > 0
    for _ in range(steps):
        if counters[DECIDED] == n:
            break
        if insertion and busy_count.max() >= capacity - 1:
            counters[ERROR] = NEEDS_SPACE
            break
        task = order[counters[DECIDED]] if independent else _heap_pop(heap, counters, arrival, rank)
        _data_ready(
            task, ready, arrival, parent_ptr, parent_idx, edge_data, edge_cost, explicit_edges,
            is_gpu, latency, bandwidth, end_of, output_of,
        )  # fmt: skip
        partner, share, action = -1, 0.0, 0
        if rule == BANDIT:
            device, partner, share, action = _bandit(
                task, ready, features[task], feasible, memory[task], is_gpu, latency,
                device_memory, splittable, free_at, weights, explore_draws[task],
                action_draws[task], counters[STEPS], cpus, gpus,
            )  # fmt: skip
        elif rule == FIXED:
            device, partner, share = fixed_device[task], fixed_partner[task], fixed_fraction[task]
        elif rule == ROUND_ROBIN:
            device = _round_robin(task, feasible, counters)
        elif rule == UNIFORM:
            device = _uniform(task, feasible, draws[task])
        elif rule == FASTEST:
            device = _fastest(task, feasible, estimate, free_at)
        else:
            device, finish = _best_whole(
                task, ready, feasible, estimate, allowed, insertion, free_at, busy_start,
                busy_end, busy_count,
            )  # fmt: skip
            if device < 0:  # no preferred device fits: any device will do
                device, finish = _best_whole(
                    task, ready, feasible, estimate, feasible[task], insertion, free_at,
                    busy_start, busy_end, busy_count,
                )  # fmt: skip
            if pair_time.shape[0] > 0:
                gpu, cpu, split_share, split_finish = _best_split(
                    task, ready, pair_time, pair_share, pair_gpu_group, pair_cpu_group,
                    group_ptr, group_devices, free_at,
                )  # fmt: skip
                if gpu >= 0 and split_finish < finish:
                    device, partner, share = gpu, cpu, split_share
        if partner >= 0 and 0.0 < share < 1.0:
            error = _check_split(task, device, partner, share, m, splittable, is_gpu, memory,
                                 device_memory)  # fmt: skip
            if error == OK:
                _commit_split(
                    task, device, partner, share, ready, exec_time, latency, insertion, free_at,
                    busy_start, busy_end, busy_count, device_of, partner_of, fraction_of,
                    start_of, end_of, output_of,
                )  # fmt: skip
        else:
            if partner >= 0:  # a "split" of 0 or 1 is a whole task
                device = device if share >= 1.0 else partner
            error = OK if 0 <= device < m else NO_SUCH_DEVICE
            if error == OK and not feasible[task, device]:
                error = DOES_NOT_FIT
            if error == OK:
                _commit_whole(
                    task, device, ready, exec_time, is_gpu, insertion, free_at, busy_start,
                    busy_end, busy_count, device_of, partner_of, fraction_of, start_of, end_of,
                    output_of,
                )  # fmt: skip
        if error != OK:
            counters[ERROR], counters[ERROR_TASK] = error, task
            break
        if rule == BANDIT:
            duration = end_of[task] - start_of[task]
            _rls_update(weights[action], covariance[action], features[task],
                        np.log(max(duration, 1e-9)))  # fmt: skip
            counters[STEPS] += 1
        if not independent:
            _release_children(task, child_ptr, child_idx, pending, heap, counters, arrival, rank)
        counters[DECIDED] += 1
    return counters[DECIDED]


# --- decision order ----------------------------------------------------------------------------
# With dependencies, released tasks (arrived, all parents placed) wait in a binary min-heap on
# (arrival, rank, index); the caller starts it with the parentless tasks, sorted (a sorted array
# is a valid heap).


@njit(cache=True)
def _before(a: int, b: int, arrival: np.ndarray, rank: np.ndarray) -> bool:
    """Task a is decided before task b: earlier arrival, then higher priority, then index."""
    if arrival[a] != arrival[b]:
        return arrival[a] < arrival[b]
    if rank[a] != rank[b]:
        return rank[a] < rank[b]
    return a < b


@njit(cache=True)
def _release_children(
    task: int,
    child_ptr: np.ndarray,
    child_idx: np.ndarray,
    pending: np.ndarray,
    heap: np.ndarray,
    counters: np.ndarray,
    arrival: np.ndarray,
    rank: np.ndarray,
) -> None:
    for k in range(child_ptr[task], child_ptr[task + 1]):
        child = child_idx[k]
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


@njit(cache=True)
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


@njit(cache=True)
def _data_ready(
    task: int,
    ready: np.ndarray,
    arrival: np.ndarray,
    parent_ptr: np.ndarray,
    parent_idx: np.ndarray,
    edge_data: np.ndarray,
    edge_cost: np.ndarray,
    explicit_edges: bool,
    is_gpu: np.ndarray,
    latency: np.ndarray,
    bandwidth: np.ndarray,
    end: np.ndarray,
    output: np.ndarray,
) -> None:
    """ready[d]: when all the task's inputs could be on device d (its arrival, or later); each
    edge's transfer as costs.edge_transfer computes it."""
    m = ready.shape[0]
    for d in range(m):
        ready[d] = arrival[task]
    for edge in range(parent_ptr[task], parent_ptr[task + 1]):
        parent = parent_idx[edge]
        source = output[parent]
        data = edge_data[edge]
        out_of = 0.0
        if not explicit_edges and is_gpu[source]:
            out_of = latency[source] + data / bandwidth[source]
        for d in range(m):
            if d == source:
                transfer = 0.0
            elif explicit_edges:
                transfer = edge_cost[edge]
            elif is_gpu[d]:
                transfer = (latency[d] + data / bandwidth[d]) + out_of
            else:
                transfer = out_of
            arrives = end[parent] + transfer
            if arrives > ready[d]:
                ready[d] = arrives


@njit(cache=True)
def _start_on(
    device: int,
    ready: float,
    duration: float,
    insertion: bool,
    free_at: np.ndarray,
    busy_start: np.ndarray,
    busy_end: np.ndarray,
    busy_count: np.ndarray,
) -> float:
    """The earliest start >= ready on `device`: after its queue, or in an idle gap."""
    free = free_at[device]
    if ready >= free:
        return ready
    if not insertion:
        return free
    count = busy_count[device]
    candidate = ready
    for k in range(np.searchsorted(busy_end[device, :count], ready, side="right"), count):
        if candidate + duration <= busy_start[device, k]:
            return candidate
        if busy_end[device, k] > candidate:
            candidate = busy_end[device, k]
    return candidate


@njit(cache=True)
def _occupy(
    device: int,
    begin: float,
    finish: float,
    insertion: bool,
    free_at: np.ndarray,
    busy_start: np.ndarray,
    busy_end: np.ndarray,
    busy_count: np.ndarray,
) -> None:
    if finish > free_at[device]:
        free_at[device] = finish
    if not insertion:
        return
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


@njit(cache=True)
def _check_split(
    task: int,
    gpu: int,
    cpu: int,
    share: float,
    m: int,
    splittable: bool,
    is_gpu: np.ndarray,
    memory: np.ndarray,
    device_memory: np.ndarray,
) -> int:
    if not (0 <= gpu < m and 0 <= cpu < m):
        return NO_SUCH_DEVICE
    if not splittable or not is_gpu[gpu] or is_gpu[cpu]:
        return SPLIT_NEEDS_GPU_AND_CPU
    slack = 1e-12 * max(1.0, memory[task])
    if share * memory[task] > device_memory[gpu] + slack:
        return SPLIT_DOES_NOT_FIT
    if (1.0 - share) * memory[task] > device_memory[cpu] + slack:
        return SPLIT_DOES_NOT_FIT
    return OK


@njit(cache=True)
def _commit_whole(
    task: int,
    device: int,
    ready: np.ndarray,
    exec_time: np.ndarray,
    is_gpu: np.ndarray,
    insertion: bool,
    free_at: np.ndarray,
    busy_start: np.ndarray,
    busy_end: np.ndarray,
    busy_count: np.ndarray,
    device_of: np.ndarray,
    partner_of: np.ndarray,
    fraction_of: np.ndarray,
    start_of: np.ndarray,
    end_of: np.ndarray,
    output_of: np.ndarray,
) -> None:
    """Run the whole task on `device` at its earliest start under the true duration."""
    duration = exec_time[task, device]
    begin = _start_on(
        device, ready[device], duration, insertion, free_at, busy_start, busy_end, busy_count
    )
    _occupy(device, begin, begin + duration, insertion, free_at, busy_start, busy_end, busy_count)
    device_of[task], partner_of[task], output_of[task] = device, -1, device
    fraction_of[task] = 1.0 if is_gpu[device] else 0.0
    start_of[task], end_of[task] = begin, begin + duration


@njit(cache=True)
def _commit_split(
    task: int,
    gpu: int,
    cpu: int,
    share: float,
    ready: np.ndarray,
    exec_time: np.ndarray,
    latency: np.ndarray,
    insertion: bool,
    free_at: np.ndarray,
    busy_start: np.ndarray,
    busy_end: np.ndarray,
    busy_count: np.ndarray,
    device_of: np.ndarray,
    partner_of: np.ndarray,
    fraction_of: np.ndarray,
    start_of: np.ndarray,
    end_of: np.ndarray,
    output_of: np.ndarray,
) -> None:
    """Run `share` on the GPU and the rest on the core, both held until the slower part ends;
    the output meets in host memory (with the core)."""
    duration = split_time(exec_time[task, cpu], exec_time[task, gpu], latency[gpu], share)
    begin = max(max(ready[gpu], ready[cpu]), max(free_at[gpu], free_at[cpu]))
    for device in (gpu, cpu):
        _occupy(
            device, begin, begin + duration, insertion, free_at, busy_start, busy_end, busy_count
        )
    device_of[task], partner_of[task], output_of[task] = gpu, cpu, cpu
    fraction_of[task] = share
    start_of[task], end_of[task] = begin, begin + duration


# --- the rules ---------------------------------------------------------------------------------


@njit(cache=True)
def _round_robin(task: int, feasible: np.ndarray, counters: np.ndarray) -> int:
    m = feasible.shape[1]
    device = counters[TURN]
    while not feasible[task, device]:
        device = (device + 1) % m
    counters[TURN] = (device + 1) % m
    return device


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def _best_whole(
    task: int,
    ready: np.ndarray,
    feasible: np.ndarray,
    estimate: np.ndarray,
    allowed: np.ndarray,
    insertion: bool,
    free_at: np.ndarray,
    busy_start: np.ndarray,
    busy_end: np.ndarray,
    busy_count: np.ndarray,
) -> tuple[int, float]:
    """The allowed, fitting device where the whole task finishes first (under `estimate`)."""
    best, best_finish = -1, np.inf
    for d in range(feasible.shape[1]):
        if feasible[task, d] and allowed[d]:
            duration = estimate[task, d]
            begin = _start_on(
                d, ready[d], duration, insertion, free_at, busy_start, busy_end, busy_count
            )
            if begin + duration < best_finish:
                best, best_finish = d, begin + duration
    return best, best_finish


@njit(cache=True)
def _earliest_of_group(
    group: int, ready: np.ndarray, group_ptr: np.ndarray, devices: np.ndarray, free_at: np.ndarray
) -> int:
    best, best_available = -1, np.inf
    for k in range(group_ptr[group], group_ptr[group + 1]):
        d = devices[k]
        available = max(ready[d], free_at[d])
        if available < best_available:
            best, best_available = d, available
    return best


@njit(cache=True)
def _best_split(
    task: int,
    ready: np.ndarray,
    pair_time: np.ndarray,
    pair_share: np.ndarray,
    pair_gpu_group: np.ndarray,
    pair_cpu_group: np.ndarray,
    group_ptr: np.ndarray,
    group_devices: np.ndarray,
    free_at: np.ndarray,
) -> tuple[int, int, float, float]:
    """The best split over devices idle when the data is ready (see policies/splits.py):
    (gpu, cpu, share, finish), gpu -1 if none."""
    best_gpu, best_cpu, best_share, best_finish = -1, -1, 0.0, np.inf
    for pair in range(pair_time.shape[0]):
        time = pair_time[pair, task]
        if not np.isfinite(time):
            continue
        gpu = _earliest_of_group(pair_gpu_group[pair], ready, group_ptr, group_devices, free_at)
        cpu = _earliest_of_group(pair_cpu_group[pair], ready, group_ptr, group_devices, free_at)
        data_there = max(ready[gpu], ready[cpu])
        start = max(data_there, max(free_at[gpu], free_at[cpu]))
        if start > data_there:
            continue  # one of the two is still busy with queued work
        if start + time < best_finish:
            best_gpu, best_cpu = gpu, cpu
            best_share, best_finish = pair_share[pair, task], start + time
    return best_gpu, best_cpu, best_share, best_finish


# --- the rl agent (see policies/rl.py for what it learns) ---------------------------------------


@njit(cache=True)
def _bandit(
    task: int,
    ready: np.ndarray,
    x: np.ndarray,
    feasible: np.ndarray,
    memory: float,
    is_gpu: np.ndarray,
    latency: np.ndarray,
    device_memory: np.ndarray,
    splittable: bool,
    free_at: np.ndarray,
    weights: np.ndarray,
    explore: float,
    pick: float,
    steps: int,
    cpus: np.ndarray,
    gpus: np.ndarray,
) -> tuple[int, int, float, int]:
    """The agent's placement: (device, partner, share, action)."""
    predicted = np.empty(3)
    for action in range(3):
        predicted[action] = np.exp(min(max(weights[action] @ x, -30.0), 30.0))
    devices = np.full(3, -1)
    finish = np.full(3, np.inf)
    for action in (CPU_ACTION, GPU_ACTION):
        best_available = np.inf
        for d in cpus if action == CPU_ACTION else gpus:
            available = max(ready[d], free_at[d])
            if feasible[task, d] and available < best_available:
                devices[action], best_available = d, available
        finish[action] = best_available + predicted[action]
    cpu, gpu, share = devices[CPU_ACTION], devices[GPU_ACTION], 0.0
    if cpu >= 0 and gpu >= 0 and splittable:
        share = _own_share(memory, device_memory[gpu], device_memory[cpu], predicted, latency[gpu])
        data_there = max(ready[gpu], ready[cpu])
        start = max(data_there, max(free_at[gpu], free_at[cpu]))
        if 0.0 < share < 1.0 and start <= data_there:
            finish[SPLIT_ACTION] = start + predicted[SPLIT_ACTION]
    # Epsilon-greedy: explore with eps_t = max(0.02, 0.3 / (1 + t / 500)), else the least
    # predicted finish.
    available = np.flatnonzero(np.isfinite(finish))
    if available.shape[0] == 0:  # unreachable while predictions stay finite; run somewhere
        return (cpu, -1, 0.0, CPU_ACTION) if cpu >= 0 else (gpu, -1, 0.0, GPU_ACTION)
    if explore < max(0.02, 0.3 / (1.0 + steps / 500.0)):
        action = available[int(pick * available.shape[0])]
    else:
        action = available[np.argmin(finish[available])]
    if action == SPLIT_ACTION:
        return gpu, cpu, share, action
    return devices[action], -1, 0.0, action


@njit(cache=True)
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


@njit(cache=True)
def _rls_update(w: np.ndarray, p: np.ndarray, x: np.ndarray, target: float) -> None:
    """One recursive-least-squares step towards w . x = target."""
    px = p @ x
    gain = px / (1.0 + x @ px)
    w += gain * (target - w @ x)
    p -= np.outer(gain, px)
