from dataclasses import dataclass, replace

import numpy as np
import pytest

from app.sim.cluster import Cluster
from app.sim.metrics import Metrics, summarize
from app.sim.problem import Problem
from app.sim.ranking import RANK_METRICS, default_rank_by, ranked
from app.sim.schedule import Schedule
from app.sim.workload import Workload


@dataclass(frozen=True)
class Outcome:
    policy: str
    metrics: Metrics


BASE = Metrics(
    makespan=10.0,
    mean_flow_time=5.0,
    p95_flow_time=8.0,
    energy=100.0,
    cost=1.0,
    mean_utilization=0.5,
    utilization={},
    slr=1.5,
    speedup=2.0,
    mean_slowdown=2.0,
    lower_bound=5.0,
    gap_to_bound=1.0,
)


def outcome(policy: str, **values: float | None) -> Outcome:
    return Outcome(policy, replace(BASE, **values))


def names(outcomes: list[Outcome]) -> list[str]:
    return [o.policy for o in outcomes]


def cpu_tasks(arrival) -> Workload:
    n = len(arrival)
    return Workload(
        size=np.full(n, 40.0), intensity=np.zeros(n), memory=np.ones(n), arrival=np.array(arrival)
    )


# The default metric


def test_online_workloads_are_ranked_by_mean_flow_time():
    assert default_rank_by(cpu_tasks([0.0, 0.5, 2.0])) == "mean_flow_time"


@pytest.mark.parametrize("arrival", [[0.0, 0.0, 0.0], [3.0, 3.0], [4.0]])
def test_workloads_arriving_at_once_are_ranked_by_makespan(arrival):
    assert default_rank_by(cpu_tasks(arrival)) == "makespan"


# The order


@pytest.mark.parametrize("metric", RANK_METRICS)
def test_outcomes_come_best_first_by_the_rank_metric_alone(metric):
    # Every other metric orders them the other way round.
    worst = {m: 30.0 for m in ("makespan", "mean_flow_time", "p95_flow_time", "energy", "cost")}
    best = {m: 10.0 for m in worst}
    outcomes = [
        outcome("a", **{**best, "mean_slowdown": 1.0, metric: 3.0}),
        outcome("b", **{**worst, "mean_slowdown": 3.0, metric: 1.0}),
        outcome("c", **{**best, "mean_slowdown": 2.0, metric: 2.0}),
    ]
    assert names(ranked(outcomes, metric)) == ["b", "c", "a"]


def test_ties_go_to_the_smaller_makespan_then_mean_flow_time_then_name():
    outcomes = [
        outcome("d", energy=1.0, makespan=9.0, mean_flow_time=9.0),
        outcome("c", energy=1.0, makespan=9.0, mean_flow_time=3.0),
        outcome("b", energy=1.0, makespan=9.0, mean_flow_time=3.0),
        outcome("a", energy=1.0, makespan=12.0, mean_flow_time=1.0),
        outcome("e", energy=0.5, makespan=99.0, mean_flow_time=99.0),
    ]
    assert names(ranked(outcomes, "energy")) == ["e", "b", "c", "d", "a"]


def test_a_rank_metric_tie_on_makespan_itself_goes_to_mean_flow_time():
    outcomes = [outcome("a", mean_flow_time=4.0), outcome("b", mean_flow_time=2.0)]
    assert names(ranked(outcomes, "makespan")) == ["b", "a"]


def test_an_undefined_metric_ranks_last():
    outcomes = [outcome("a", mean_slowdown=None), outcome("b", mean_slowdown=50.0)]
    assert names(ranked(outcomes, "mean_slowdown")) == ["b", "a"]


def test_an_unknown_rank_metric_is_refused():
    with pytest.raises(ValueError, match=r"unknown rank metric 'speedup'.*makespan"):
        ranked([outcome("a")], "speedup")


# Mean slowdown


def test_mean_slowdown_is_the_mean_of_flow_time_over_fastest_time():
    # One core, tasks of 1 s, 2 s and 1 s (40 GFLOP/s) arriving at 0, 0 and 1, run in order.
    workload = Workload(
        size=np.array([40.0, 80.0, 40.0]),
        intensity=np.zeros(3),
        memory=np.ones(3),
        arrival=np.array([0.0, 0.0, 1.0]),
    )
    problem = Problem.build(workload, Cluster.homogeneous_kinds(1, 0))
    schedule = Schedule(
        device=np.zeros(3, int),
        partner=np.full(3, -1),
        gpu_fraction=np.zeros(3),
        start=np.array([0.0, 1.0, 3.0]),
        end=np.array([1.0, 3.0, 4.0]),
    )
    metrics = summarize(problem, schedule)
    # Flow times 1, 3, 3 over fastest times 1, 2, 1.
    assert metrics.mean_slowdown == pytest.approx((1 / 1 + 3 / 2 + 3 / 1) / 3)
    assert metrics.mean_slowdown >= 1


def test_mean_slowdown_leaves_out_tasks_that_cost_nothing():
    workload = Workload(
        size=np.array([0.0, 40.0]), intensity=np.zeros(2), memory=np.zeros(2), arrival=np.zeros(2)
    )
    problem = Problem.build(workload, Cluster.homogeneous_kinds(1, 0))
    schedule = Schedule(
        np.zeros(2, int), np.full(2, -1), np.zeros(2), np.array([0.0, 1.0]), np.array([0.0, 2.0])
    )
    assert summarize(problem, schedule).mean_slowdown == pytest.approx(2.0)  # task 1 only
    only_free = Workload(size=np.zeros(1), intensity=np.zeros(1), memory=np.zeros(1),
                         arrival=np.zeros(1))  # fmt: skip
    free_problem = Problem.build(only_free, Cluster.homogeneous_kinds(1, 0))
    nothing = Schedule(np.zeros(1, int), np.full(1, -1), np.zeros(1), np.zeros(1), np.zeros(1))
    assert summarize(free_problem, nothing).mean_slowdown is None
