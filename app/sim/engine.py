"""The one event-driven engine every policy runs through.

A task is *released* when it has arrived (its `arrival`) and all its parents are placed. Released
tasks are decided one at a time in order of arrival, then of the policy's priority (HEFT's upward
rank; by default the task index): for a static DAG (all arrivals 0) that is list scheduling in
priority order, for online workloads it is dispatch at arrival. For each task the engine knows,
per device, when the task's input data could be there (its parents' end plus transfers, or its
arrival) and when the device is free; the policy's rule picks a device (the whole task) or a split
over a GPU and a CPU core, and the engine fixes the true start and end from the true times
(the truth, knowledge.py; the policy decided on its own view of them): a
device runs one task at a time, a task never starts before its data arrived, never runs where its
data does not fit, and, for policies that ask for `insertion`, may fill an idle gap left earlier
on a device.

A policy says *how* it decides by returning a `Decision` (decision.py): one of a few rules
(kernel.py) and the arrays it needs — its priorities, the execution times it believes, the
devices it prefers, its split tables, its random draws. The batch rules (min-min, max-min,
sufferage) take released tasks in the same order but map them in batches, at mapping events
(kernel.advance_batches). The runtime schedulers (eager, ws, dm, dmda, dmdas, heteroprio) do
not decide at release: a task waits in a queue until a device takes it, in an event loop of their
own (kernel_runtime.advance_runtime, whose docstring states its event rules). The loops are
compiled (numba), so the engine spends well under a microsecond per decision on independent
tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from app.sim import kernel, kernel_runtime
from app.sim.cluster import Cluster, DeviceKind
from app.sim.decision import BATCH_RULES, RUNTIME_RULES, Decision, Rule
from app.sim.knowledge import Scenario
from app.sim.problem import Problem
from app.sim.schedule import Schedule
from app.sim.workload import Workload

if TYPE_CHECKING:
    from app.sim.policies.base import Policy

ProgressCallback = Callable[[float], None]

#: How many decisions pass between two progress callbacks.
PROGRESS_EVERY = 4096


class PolicyError(RuntimeError):
    """A policy broke the engine's contract (e.g. chose a device the task does not fit on)."""


_ERRORS = {
    kernel.NO_SUCH_DEVICE: "no such device",
    kernel.DOES_NOT_FIT: "its data does not fit",
    kernel.SPLIT_NEEDS_GPU_AND_CPU: "a split needs a GPU and a CPU core (and the cost model)",
    kernel.SPLIT_DOES_NOT_FIT: "the split's GPU share does not fit the memory",
}


def simulate(
    scenario: Scenario | Problem,
    policy: Policy,
    rng: np.random.Generator,
    on_progress: ProgressCallback | None = None,
) -> Schedule:
    """Run `policy` on the scenario: it decides on its view (knowledge.py), the engine executes
    every placement on the truth. A bare `Problem` is a scenario whose estimates are exact."""
    if isinstance(scenario, Problem):
        scenario = Scenario.exact(scenario)
    problem, view = scenario.truth, scenario.view(policy)
    decision = policy.decide(view, rng)
    broken = _contract_broken(decision, problem.feasible)
    if broken:
        raise PolicyError(f"{policy.name} decided badly: {broken}")
    model, rules = _model(problem), _rules(view, decision)
    if decision.rule in RUNTIME_RULES:
        placed, aborted = _run_runtime(model, rules, problem, policy.name, on_progress)
    else:
        placed, aborted = _run_list(decision, model, rules, problem, policy.name, on_progress), 0
    policy.finished(view)
    if on_progress is not None:
        on_progress(1.0)
    return Schedule(
        device=placed.device,
        partner=placed.partner,
        gpu_fraction=placed.fraction,
        start=placed.start,
        end=placed.end,
        aborted=aborted,
    )


def _run_list(
    decision: Decision,
    model: kernel.Model,
    rules: kernel.Rules,
    problem: Problem,
    name: str,
    on_progress: ProgressCallback | None,
) -> kernel.Placements:
    """The decide-at-release rules (kernel.advance, kernel.advance_batches): the placements."""
    state = _state(problem, rules.rank, decision.insertion)
    n, done = problem.num_tasks, 0
    while done < n:
        if on_progress is not None:
            on_progress(done / n)
        done = _advance(decision, model, rules, state, _steps(n, on_progress))
        if state.counters[kernel.ERROR] == kernel.NEEDS_SPACE:
            state = _with_more_space(state)
        elif state.counters[kernel.ERROR] != kernel.OK:
            task = int(state.counters[kernel.ERROR_TASK])
            reason = _ERRORS[int(state.counters[kernel.ERROR])]
            raise PolicyError(f"{name} placed task {task} badly: {reason}")
    return state.placements


def _run_runtime(
    model: kernel.Model,
    rules: kernel.Rules,
    problem: Problem,
    name: str,
    on_progress: ProgressCallback | None,
) -> tuple[kernel.Placements, int]:
    """The runtime rules (kernel_runtime.advance_runtime): the placements (each task's final
    execution) and how many runs a spoliation aborted."""
    state = _runtime_state(problem, rules.rank)
    n, done = problem.num_tasks, 0
    while done < n:
        if on_progress is not None:
            on_progress(done / n)
        before = done
        done = kernel_runtime.advance_runtime(model, rules, state, _steps(n, on_progress))
        if done == before:  # unreachable while every task fits some device (Problem.build)
            raise PolicyError(f"{name} left tasks that no device takes")
    return state.placements, int(state.counters[kernel_runtime.ABORTED])


def _steps(n: int, on_progress: ProgressCallback | None) -> int:
    """Decisions per kernel call: all of them without a callback (each call costs ~15 µs at the
    boundary), else PROGRESS_EVERY."""
    return n if on_progress is None else PROGRESS_EVERY


def _advance(
    decision: Decision, model: kernel.Model, rules: kernel.Rules, state: kernel.State, steps: int
) -> int:
    """Up to `steps` more decisions (whole mapping events for the batch rules)."""
    if decision.rule in BATCH_RULES:
        return kernel.advance_batches(model, rules, state, steps, decision.batch_limit)
    return kernel.advance(model, rules, state, steps)


def _contract_broken(decision: Decision, feasible: np.ndarray) -> str | None:
    """What is wrong with the arrays of `decision` for n tasks on m devices (`feasible`, (n, m):
    where each task fits), or None. The kernel does not check bounds: an array of the wrong shape
    would read memory it does not own."""
    n, m = feasible.shape
    shapes: list[tuple[str, np.ndarray | None, tuple[int, ...]]] = [
        ("priority", decision.priority, (n,)),
        ("estimate", decision.estimate, (n, m)),
        ("allowed", decision.allowed, (m,)),
        ("bias", decision.bias, (n, m)),
    ]
    needed = {
        Rule.UNIFORM: decision.draws,
        Rule.FIXED: decision.fixed,
        Rule.BANDIT: decision.bandit,
    }
    if decision.rule in needed and needed[decision.rule] is None:
        return f"rule {decision.rule.name} needs its arrays"
    if decision.rule in BATCH_RULES and (decision.insertion or decision.batch_limit < 1):
        return f"rule {decision.rule.name} appends to queues, at least one task per event"
    runtime = decision.rule in RUNTIME_RULES
    if runtime and (decision.insertion or decision.splits is not None or decision.bias is not None):
        return f"rule {decision.rule.name} runs whole tasks from queues: no insertion, split, bias"
    if not runtime and decision.estimate is not None and np.isnan(decision.estimate).any():
        return "estimate has NaN: only the runtime rules explore where the model has no answer"
    if decision.rule == Rule.UNIFORM:
        shapes.append(("draws", decision.draws, (n,)))
    if decision.rule == Rule.FIXED and decision.fixed is not None:
        shapes += [(f"fixed[{i}]", array, (n,)) for i, array in enumerate(decision.fixed)]
    if decision.rule == Rule.BANDIT and decision.bandit is not None:
        bandit = decision.bandit
        k = np.shape(bandit.features)[-1]
        shapes += [
            ("features", bandit.features, (n, k)),
            ("explore_draws", bandit.explore_draws, (n,)),
            ("action_draws", bandit.action_draws, (n,)),
            ("weights", bandit.weights, (3, k)),
            ("covariance", bandit.covariance, (3, k, k)),
        ]
    if decision.splits is not None:
        splits = decision.splits
        pairs, groups = len(splits.pair_gpu_group), len(splits.group_ptr) - 1
        shapes += [
            ("splits.pair_cpu_group", splits.pair_cpu_group, (pairs,)),
            ("splits.share", splits.share, (pairs, n)),
            ("splits.time", splits.time, (pairs, n)),
            ("splits.group_devices", splits.group_devices, (int(splits.group_ptr[-1]),)),
        ]
        pair_groups = np.concatenate([splits.pair_gpu_group, splits.pair_cpu_group])
        if not np.all((pair_groups >= 0) & (pair_groups < groups)):
            return "split tables name a group that does not exist"
        if not np.all((splits.group_devices >= 0) & (splits.group_devices < m)):
            return "split tables name a device that does not exist"
    for name, array, shape in shapes:
        if array is not None and np.shape(array) != shape:
            return f"{name} has shape {np.shape(array)}, expected {shape}"
    if decision.bias is not None:
        if decision.splits is not None:
            return "a bias only chooses between whole-task placements, not splits"
        if np.isnan(decision.bias).any():
            return "bias has NaN"
        if not (np.isfinite(decision.bias) & feasible).any(axis=1).all():
            return "bias rules out every device some task fits"
    return None


def _model(problem: Problem) -> kernel.Model:
    """The problem as the kernel reads it. The kernel never writes these arrays: they are the
    problem's own where their layout fits (copies cost time in every run, see `_own`)."""
    workload, cluster = problem.workload, problem.cluster
    child_ptr, child_idx, _ = workload.children
    tasks = kernel.Tasks(
        arrival=_own(workload.arrival, np.float64),
        memory=_own(workload.memory, np.float64),
        exec_time=np.ascontiguousarray(problem.exec_time, dtype=np.float64),
        feasible=np.ascontiguousarray(problem.feasible, dtype=np.bool_),
        splittable=problem.splittable,
    )
    dag = kernel.Dag(
        parent_ptr=_own(workload.parent_ptr, np.int64),
        parent_idx=_own(workload.parent_idx, np.int64),
        edge_data=_own(workload.edge_data, np.float64),
        edge_cost=_floats(workload.edge_cost, 1),
        explicit_edges=workload.edge_cost is not None,
        child_ptr=_own(child_ptr, np.int64),
        child_idx=_own(child_idx, np.int64),
    )
    platform = kernel.Platform(
        is_gpu=cluster.kind == DeviceKind.GPU,
        latency=_own(cluster.latency, np.float64),
        bandwidth=_own(cluster.bandwidth, np.float64),
        memory=_own(cluster.memory, np.float64),
        cpus=_own(cluster.cpus, np.int64),
        gpus=_own(cluster.gpus, np.int64),
    )
    return kernel.Model(tasks, dag, platform)


def _rules(view: Problem, decision: Decision) -> kernel.Rules:
    """The policy's rule and arrays (checked by _contract_broken); times it does not give are
    those of its view. What the rule does not use is left zero-size."""
    n, m = view.num_tasks, view.num_devices
    splits, bandit, fixed = decision.splits, decision.bandit, decision.fixed
    return kernel.Rules(
        rule=int(decision.rule),
        rank=_rank(n, decision.priority),
        estimate=view.exec_time if decision.estimate is None else decision.estimate,
        allowed=np.ones(m, np.bool_) if decision.allowed is None else decision.allowed,
        draws=_floats(decision.draws, 1),
        fixed=kernel.Fixed(
            device=_ints(None if fixed is None else fixed[0]),
            partner=_ints(None if fixed is None else fixed[1]),
            fraction=_floats(None if fixed is None else fixed[2], 1),
        ),
        has_splits=splits is not None,
        splits=kernel.Splits(
            group_ptr=_ints(None if splits is None else splits.group_ptr),
            group_devices=_ints(None if splits is None else splits.group_devices),
            pair_gpu_group=_ints(None if splits is None else splits.pair_gpu_group),
            pair_cpu_group=_ints(None if splits is None else splits.pair_cpu_group),
            share=_floats(None if splits is None else splits.share, 2),
            time=_floats(None if splits is None else splits.time, 2),
        ),
        bandit=kernel.Bandit(
            features=_floats(None if bandit is None else bandit.features, 2),
            explore_draws=_floats(None if bandit is None else bandit.explore_draws, 1),
            action_draws=_floats(None if bandit is None else bandit.action_draws, 1),
            weights=_floats(None if bandit is None else bandit.weights, 2),  # updated in place
            covariance=_floats(None if bandit is None else bandit.covariance, 3),
        ),
        bias=_floats(decision.bias, 2),
    )


def _state(problem: Problem, rank: np.ndarray, insertion: bool) -> kernel.State:
    n, m = problem.num_tasks, problem.num_devices
    workload = problem.workload
    pending = np.zeros(0, dtype=np.int64)  # parents not yet placed, counted down in a DAG
    counters = np.zeros(6, dtype=np.int64)
    sequence = np.zeros(0, dtype=np.int64)
    heap = np.zeros(0, dtype=np.int64)
    if workload.has_dependencies:
        pending = np.diff(workload.parent_ptr).astype(np.int64)
        roots = np.flatnonzero(pending == 0)
        heap = np.zeros(n, dtype=np.int64)
        sorted_roots = roots[np.lexsort((roots, rank[roots], workload.arrival[roots]))]
        heap[: roots.size] = sorted_roots  # sorted: already a valid heap
        counters[kernel.HEAP_SIZE] = roots.size
    else:
        sequence = np.lexsort((rank, workload.arrival)).astype(np.int64)  # stable: ties by index
    capacity = 64 if insertion else 2
    devices = kernel.Devices(
        insertion=insertion,
        free_at=np.zeros(m),
        busy_start=np.empty((m, capacity)),
        busy_end=np.empty((m, capacity)),
        busy_count=np.zeros(m, dtype=np.int64),
    )
    placements = _placements(n)
    order = kernel.Order(
        independent=not workload.has_dependencies, sequence=sequence, heap=heap, pending=pending
    )
    return kernel.State(devices, placements, order, counters)


def _runtime_state(problem: Problem, rank: np.ndarray) -> kernel_runtime.RuntimeState:
    """Nothing running, every queue empty; the parentless tasks wait for their arrival in the
    heap, sorted by (arrival, rank, index) (a sorted array is a valid heap)."""
    n, m = problem.num_tasks, problem.num_devices
    workload = problem.workload
    pending = np.diff(workload.parent_ptr).astype(np.int64)
    roots = np.flatnonzero(pending == 0)
    heap = np.zeros(n, dtype=np.int64)
    heap[: roots.size] = roots[np.lexsort((roots, rank[roots], workload.arrival[roots]))]
    counters = np.zeros(kernel_runtime.COUNTERS, dtype=np.int64)
    counters[kernel_runtime.HEAP_SIZE] = roots.size
    return kernel_runtime.RuntimeState(
        placements=_placements(n),
        workers=kernel_runtime.Workers(
            running=np.full(m, -1, dtype=np.int64),
            until=np.zeros(m),
            believed_end=np.zeros(m),
            load=np.zeros(m),
        ),
        queues=kernel_runtime.Queues(
            links=np.full((2, n), -1, dtype=np.int64),
            ends=_queue_ends(m + 1),
            ready=np.zeros((2, n), dtype=np.int64),
            ready_size=np.zeros((2, kernel_runtime.HEAP_SIZE + 1), dtype=np.int64),
        ),
        bound=kernel_runtime.Bound(
            data_at=np.zeros(n), releaser=np.full(n, -1, dtype=np.int64), key=np.zeros((2, n))
        ),
        order=kernel.Order(
            independent=False, sequence=np.zeros(0, dtype=np.int64), heap=heap, pending=pending
        ),
        counters=counters,
        clock=np.zeros(1),
    )


def _queue_ends(queues: int) -> np.ndarray:
    """Queues.ends of empty queues: no head, no tail, no task."""
    ends = np.full((3, queues), -1, dtype=np.int64)
    ends[kernel_runtime.COUNT] = 0
    return ends


def _placements(n: int) -> kernel.Placements:
    return kernel.Placements(
        device=np.full(n, -1, dtype=np.int64),
        partner=np.full(n, -1, dtype=np.int64),
        fraction=np.zeros(n),
        start=np.zeros(n),
        end=np.zeros(n),
        output=np.full(n, -1, dtype=np.int64),
    )


def _with_more_space(state: kernel.State) -> kernel.State:
    """Double the busy-interval arrays (insertion policies) and clear the stop."""
    state.counters[kernel.ERROR] = kernel.OK
    devices = state.devices
    grown = [
        np.concatenate([a, np.empty_like(a)], axis=1)
        for a in (devices.busy_start, devices.busy_end)
    ]
    return state._replace(devices=devices._replace(busy_start=grown[0], busy_end=grown[1]))


def _rank(n: int, priority: np.ndarray | None) -> np.ndarray:
    """The heap's key: lower first, so minus the priority."""
    return np.zeros(n) if priority is None else -np.asarray(priority, dtype=np.float64)


def _own(array: np.ndarray, dtype: type) -> np.ndarray:
    """`array` itself if it is C-contiguous and writeable with `dtype`, else such a copy: the
    compiled kernel is specialised for that layout (another would compile again, ~15 s)."""
    return np.require(array, dtype=dtype, requirements=("C", "W"))


def _floats(array: np.ndarray | None, ndim: int) -> np.ndarray:
    if array is None:
        return np.zeros((0,) * ndim)
    return np.ascontiguousarray(array, dtype=np.float64)


def _ints(array: np.ndarray | None) -> np.ndarray:
    return np.zeros(0, dtype=np.int64) if array is None else np.asarray(array, dtype=np.int64)


def warm_up() -> None:
    """Compile the loops now (or load them from numba's cache): a worker calls this before
    forking its pool, so no run pays the compilation (on a fresh checkout about 15 s for
    `advance` and 6.5 s for `advance_batches`, measured December 2026 on a shared 2-core VM,
    where `advance` alone took 12.7 s before the batch rules and OLB; `advance_runtime` adds
    about 11 s, measured the same way with the other loops cached, load 1.8)."""
    workload = Workload.from_edges(
        size=np.ones(2), intensity=np.zeros(2), memory=np.ones(2), arrival=np.zeros(2),
        edges=[(0, 1)],
    )  # fmt: skip
    problem = Problem.build(workload, Cluster.homogeneous_kinds(1, 1))
    decision = Decision(Rule.EFT)
    rules = _rules(problem, decision)
    kernel.advance(_model(problem), rules, _state(problem, rules.rank, decision.insertion), 2)
    batch = Decision(Rule.MIN_MIN)
    state = _state(problem, rules.rank, batch.insertion)
    kernel.advance_batches(_model(problem), _rules(problem, batch), state, 2, batch.batch_limit)
    runtime = Decision(Rule.DMDA)
    rules = _rules(problem, runtime)
    kernel_runtime.advance_runtime(_model(problem), rules, _runtime_state(problem, rules.rank), 2)
