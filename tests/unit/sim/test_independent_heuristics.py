"""The heuristics for independent tasks (policies/immediate.py, policies/batch.py): a
hand-checked instance for each, and the engine's schedules cross-checked against a plain-Python
reference of each rule written here, independently of the kernel."""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import numpy as np
import pytest

from app.sim.cluster import DEFAULT_GPU, Cluster
from app.sim.decision import BATCH_LIMIT, Decision, Rule
from app.sim.engine import PolicyError, simulate
from app.sim.invariants import violations
from app.sim.policies import POLICY_NAMES, REGISTRY, make_policy
from app.sim.policies.base import Policy
from app.sim.problem import Problem
from app.sim.schedule import Schedule
from app.sim.workload import Workload
from tests.unit.sim.conftest import synthetic_problem

IMMEDIATE = ("olb", "met", "mct")
BATCH = ("minmin", "maxmin", "sufferage")

# --- the reference: each rule as the papers state it, task by task, in plain Python -------------


def reference_schedule(
    problem: Problem, name: str, batch_limit: int = BATCH_LIMIT
) -> tuple[list[int], list[float], list[float]]:
    """(device, start, end) per task of an independent workload, under `name`'s rule with the
    true times as the estimates. Ties: the lower device index, the task that arrived first."""
    times = problem.exec_time.tolist()
    fits = problem.feasible.tolist()
    arrival = problem.workload.arrival.tolist()
    n, m = problem.num_tasks, problem.num_devices
    order = sorted(range(n), key=lambda i: (arrival[i], i))
    free = [0.0] * m
    device, start, end = [-1] * n, [0.0] * n, [0.0] * n

    def run(task: int, d: int) -> None:
        device[task], start[task] = d, max(arrival[task], free[d])
        end[task] = free[d] = start[task] + times[task][d]

    def completion(task: int, d: int) -> float:
        return max(arrival[task], free[d]) + times[task][d]

    if name in IMMEDIATE:
        for task in order:
            run(task, _immediate_choice(name, task, fits[task], times[task], arrival, free))
        return device, start, end
    taken = 0
    while taken < n:
        # A mapping event: when a task is waiting and a device is idle.
        event = max(min(free), arrival[order[taken]])
        batch = []
        while taken < n and len(batch) < batch_limit and arrival[order[taken]] <= event:
            batch.append(order[taken])
            taken += 1
        while batch:
            best_key, chosen = -math.inf, None
            for task in batch:
                finishes = sorted(
                    (completion(task, d), d) for d in range(m) if fits[task][d]
                )  # by completion, then device index
                first, best_device = finishes[0]
                second = finishes[1][0] if len(finishes) > 1 else math.inf
                key = {"minmin": -first, "maxmin": first, "sufferage": second - first}[name]
                if chosen is None or key > best_key:
                    best_key, chosen = key, (task, best_device)
            assert chosen is not None
            run(*chosen)
            batch.remove(chosen[0])
    return device, start, end


def _immediate_choice(
    name: str, task: int, fits: list[bool], times: list[float], arrival: list[float],
    free: list[float],
) -> int:  # fmt: skip
    candidates = [d for d in range(len(fits)) if fits[d]]
    if name == "olb":  # starts first; then idle longest; then index
        return min(candidates, key=lambda d: (max(arrival[task], free[d]), free[d], d))
    if name == "met":  # fastest (within 1e-9, as the engine compares); then free first
        least = min(times[d] for d in candidates)
        fastest = [d for d in candidates if times[d] <= least * (1 + 1e-9)]
        return min(fastest, key=lambda d: (free[d], d))
    return min(candidates, key=lambda d: (max(arrival[task], free[d]) + times[d], d))  # mct


# --- hand-checked instances ---------------------------------------------------------------------


def explicit(costs: list[list[float]], arrival: list[float] | None = None) -> Problem:
    """Independent tasks with the given cost table (seconds, task x processor) on as many
    abstract processors; the estimates are the truth."""
    n = len(costs)
    workload = Workload.from_edges(
        size=np.ones(n), intensity=np.zeros(n), memory=np.zeros(n),
        arrival=np.zeros(n) if arrival is None else np.array(arrival, float), edges=[],
        exec_cost=np.array(costs, float),
    )  # fmt: skip
    return Problem.build(workload, Cluster.processors(len(costs[0])))


def schedule_of(problem: Problem, name: str) -> Schedule:
    schedule = simulate(problem, make_policy(name), np.random.default_rng(0))
    assert violations(problem, schedule) == []
    return schedule


def test_olb_takes_the_device_available_first_whatever_the_task_costs_there():
    problem = explicit([[5, 1], [1, 4], [2, 2], [2, 2], [3, 1]], arrival=[0, 0, 0, 0, 10])
    s = schedule_of(problem, "olb")
    # t0: both idle at 0, same idle time: p0 (the lower index), although p1 takes 1 s: 0-5.
    # t1: p1 free at 0, p0 at 5: p1, 0-4, although p0 takes 1 s.
    # t2: p1 free at 4 < 5: p1, 4-6.      t3: p0 free at 5 < 6: p0, 5-7.
    # t4 arrives at 10: both free; p1 has been idle since 6, p0 since 7: p1, 10-11.
    assert s.device.tolist() == [0, 1, 1, 0, 1]
    assert s.start.tolist() == [0, 0, 4, 5, 10] and s.end.max() == 11


def test_met_takes_the_fastest_device_whatever_is_queued_there():
    problem = explicit([[2, 1], [3, 1], [1, 1], [3, 2.5]])
    s = schedule_of(problem, "met")
    # t0, t1: p1 is fastest: 0-1, 1-2.   t2: as fast on both; p0 is free first: p0, 0-1.
    # t3: p1 is fastest (2.5 < 3) although p0 would finish it at 4: p1, 2-4.5.
    assert s.device.tolist() == [1, 1, 0, 1]
    assert s.end.tolist() == [1, 2, 1, 4.5]


def test_mct_takes_the_device_where_the_task_completes_first():
    problem = explicit([[2, 1], [3, 1], [1, 1], [3, 2.5]])  # MET's instance: makespan 4.5
    s = schedule_of(problem, "mct")
    # t0: p1 completes at 1 (p0 at 2).   t1: p1 at 2 (p0 at 3).
    # t2: p0 at 1 (p1 at 3).             t3: p0 at 1 + 3 = 4 (p1 at 2 + 2.5 = 4.5).
    assert s.device.tolist() == [1, 1, 0, 0]
    assert s.end.tolist() == [1, 2, 1, 4]


# One batch (all arrive at 0) on two processors.
MIN_MAX = [[1, 3], [2, 3.5], [4, 5.5]]


def test_minmin_maps_the_task_that_completes_soonest_first():
    s = schedule_of(explicit(MIN_MAX), "minmin")
    # Best completions: t0 1 (p0), t1 2 (p0), t2 4 (p0): t0 -> p0, 0-1.
    # Then t1 3 (p0; p1 3.5), t2 5 (p0; p1 5.5): t1 -> p0, 1-3.
    # Then t2: p0 3 + 4 = 7, p1 5.5: t2 -> p1, 0-5.5.
    assert s.device.tolist() == [0, 0, 1]
    assert s.end.tolist() == [1, 3, 5.5]


def test_maxmin_maps_the_task_that_completes_latest_first():
    s = schedule_of(explicit(MIN_MAX), "maxmin")
    # Best completions: t0 1, t1 2, t2 4 (all p0): t2 -> p0, 0-4.
    # Then t0 3 (p1; p0 5), t1 3.5 (p1; p0 6): t1 -> p1, 0-3.5.
    # Then t0: p0 4 + 1 = 5, p1 3.5 + 3 = 6.5: t0 -> p0, 4-5. Makespan 5 < min-min's 5.5.
    assert s.device.tolist() == [0, 1, 0]
    assert s.end.tolist() == [5, 3.5, 4]


def test_sufferage_maps_the_task_that_loses_most_without_its_best_device_first():
    s = schedule_of(explicit([[1, 1.5], [2, 10], [6, 7.5]]), "sufferage")
    # Best and second-best completions: t0 1 / 1.5 (suffers 0.5), t1 2 / 10 (8), t2 6 / 7.5
    # (1.5): t1 -> p0, 0-2. Then t0 1.5 (p1) / 3 (p0) suffers 1.5, t2 7.5 (p1) / 8 (p0) 0.5:
    # t0 -> p1, 0-1.5. Then t2: p0 2 + 6 = 8, p1 1.5 + 7.5 = 9: t2 -> p0, 2-8.
    # (Min-min would take t0 first, then t1 on p0 at 3, t2 on p1: 7.5; max-min t2 first on p0.)
    assert s.device.tolist() == [1, 0, 0]
    assert s.start.tolist() == [0, 0, 2] and s.end.max() == 8
    assert schedule_of(explicit([[1, 1.5], [2, 10], [6, 7.5]]), "maxmin").start[1] == 6


def test_tasks_arriving_while_every_device_is_busy_are_mapped_together():
    problem = explicit([[10], [5], [1]], arrival=[0, 1, 2])
    # t0 is mapped at 0 (0-10). t1 and t2 arrive while p0 is busy: one mapping event at 10,
    # where min-min runs the shorter t2 first (10-11, then t1 11-16); MCT, mapping each task at
    # its arrival, runs them in arrival order.
    assert schedule_of(problem, "minmin").start.tolist() == [0, 11, 10]
    assert schedule_of(problem, "maxmin").start.tolist() == [0, 10, 15]
    assert schedule_of(problem, "mct").start.tolist() == [0, 10, 15]


def test_in_a_dag_the_released_children_wait_for_the_next_mapping_event():
    workload = Workload.from_edges(
        size=np.ones(3), intensity=np.zeros(3), memory=np.zeros(3), arrival=np.zeros(3),
        edges=[(0, 1), (0, 2)], exec_cost=np.array([[1, 2], [4, 3], [1, 4]], float),
        edge_cost=np.array([1.0, 1.0]),
    )  # fmt: skip
    problem = Problem.build(workload, Cluster.processors(2))
    s = schedule_of(problem, "minmin")
    # Event at 0: only t0 is waiting: p0 (completes at 1; p1 at 2). Placing it releases t1 and
    # t2, mapped together at the next event, at 0 again (p1 is idle), their data ready at 1 on
    # p0 and at 1 + 1 (the edge) on p1. t1: p0 1 + 4 = 5, p1 2 + 3 = 5; t2: p0 1 + 1 = 2:
    # t2 -> p0, 1-2; then t1: p0 2 + 4 = 6, p1 5: t1 -> p1, 2-5. Makespan 5.
    assert s.device.tolist() == [0, 1, 0]
    assert s.start.tolist() == [0, 2, 1] and s.end.max() == 5
    # MCT maps t1 first, at its release: p0 (5, the lower index), and t2 behind it: 6.
    assert schedule_of(problem, "mct").end.max() == 6


# --- the engine against the reference -----------------------------------------------------------


class Given(Policy):
    """Decides as it is told: a batch rule with another batch limit, or a broken decision."""

    name = "given"
    summary = "test policy"

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def decide(self, problem, rng):
        return self.decision


def small_gpus(seed: int) -> Problem:
    """Many tasks fit no GPU: one fitting kind, the other's devices idle."""
    workload = synthetic_problem(400, seed=seed, arrival_rate=300.0).workload
    gpu = replace(DEFAULT_GPU, memory=float(np.median(workload.memory)))
    return Problem.build(workload, Cluster.homogeneous_kinds(3, 2, gpu=gpu))


RANDOM_WORKLOADS = {
    "light_load": lambda: synthetic_problem(400, seed=1, cpus=3, gpus=2, arrival_rate=50.0),
    "heavy_load": lambda: synthetic_problem(600, seed=2, cpus=3, gpus=2, arrival_rate=400.0),
    "all_at_once": lambda: synthetic_problem(500, seed=3, cpus=3, gpus=2, arrival_rate=1e9),
    "small_gpus": lambda: small_gpus(4),
}


@pytest.mark.parametrize("workload", sorted(RANDOM_WORKLOADS))
@pytest.mark.parametrize("name", IMMEDIATE + BATCH)
def test_the_engine_schedules_as_the_reference_does(name, workload):
    problem = RANDOM_WORKLOADS[workload]()
    s = schedule_of(problem, name)
    device, start, end = reference_schedule(problem, name)
    assert s.device.tolist() == device
    assert s.start.tolist() == start and s.end.max() == max(end)


@pytest.mark.parametrize("name", BATCH)
def test_a_batch_is_cut_at_the_batch_limit_as_the_reference_cuts_it(name):
    problem = synthetic_problem(300, seed=4, cpus=2, gpus=1, arrival_rate=1e9)
    rule = REGISTRY[name]().decide(problem, np.random.default_rng(0)).rule
    s = simulate(problem, Given(Decision(rule, batch_limit=7)), np.random.default_rng(0))
    device, start, _ = reference_schedule(problem, name, batch_limit=7)
    assert s.device.tolist() == device and s.start.tolist() == start
    assert device != reference_schedule(problem, name)[0]  # the limit made a difference


def test_the_heuristics_are_registered_policies_that_cite_their_papers():
    for name in IMMEDIATE + BATCH:
        policy = REGISTRY[name]
        assert name in POLICY_NAMES and policy.summary and policy.knows
        assert "JPDC" in (sys.modules[policy.__module__].__doc__ or "")


@pytest.mark.parametrize(
    "decision", [Decision(Rule.MIN_MIN, insertion=True), Decision(Rule.SUFFERAGE, batch_limit=0)]
)
def test_a_batch_rule_that_would_insert_or_map_nothing_is_refused(decision):
    with pytest.raises(PolicyError, match="appends to queues"):
        simulate(explicit([[1.0]]), Given(decision), np.random.default_rng(0))
