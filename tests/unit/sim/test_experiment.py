from itertools import groupby

import numpy as np
import pytest

from app.sim.engine import PROGRESS_EVERY
from app.sim.experiment import policy_rng, policy_schedule, run_experiment
from app.sim.knowledge import Scenario
from app.sim.policies import POLICY_NAMES
from tests.unit.sim.conftest import layered_problem, synthetic_problem

FIELDS = ("device", "partner", "gpu_fraction", "start", "end")


@pytest.mark.parametrize(
    "build",
    [lambda: synthetic_problem(800, dependency_probability=0.3), lambda: layered_problem(150)],
)
def test_same_problem_and_seed_give_identical_schedules_for_every_policy(build, context):
    first = run_experiment(build(), POLICY_NAMES, 11, context=context)
    again = run_experiment(build(), POLICY_NAMES, 11, context=context)
    for a, b in zip(first, again, strict=True):
        for field in ("device", "partner", "gpu_fraction", "start", "end"):
            assert np.array_equal(getattr(a.schedule, field), getattr(b.schedule, field)), (
                a.policy,
                field,
            )
        assert a.metrics == b.metrics


def test_one_policys_schedule_alone_is_the_one_its_experiment_computed(context):
    problem = synthetic_problem(400, dependency_probability=0.3)
    for outcome in run_experiment(problem, POLICY_NAMES, 5, context=context):
        alone = policy_schedule(Scenario.exact(problem), outcome.policy, 5, context)
        assert alone.digest() == outcome.schedule.digest(), outcome.policy


def test_a_policys_result_does_not_depend_on_the_other_policies_in_the_run():
    problem = synthetic_problem(500)
    alone = run_experiment(problem, ["random"], 3)[0]
    outcomes = run_experiment(problem, ["greedy", "rl", "random"], 3)
    with_others = next(o for o in outcomes if o.policy == "random")
    assert np.array_equal(alone.schedule.device, with_others.schedule.device)


@pytest.mark.parametrize("rank_by", [None, "makespan", "energy"])
def test_gaps_to_oracle_are_relative_differences_in_the_rank_metric(context, rank_by):
    problem = synthetic_problem(400)
    policies = ["round_robin", "oracle"]
    outcomes = run_experiment(problem, policies, 0, context=context, rank_by=rank_by)
    by_name = {o.policy: o for o in outcomes}
    metric = rank_by or "mean_flow_time"  # the default for online arrivals
    expected = by_name["round_robin"].metrics.value(metric) / by_name["oracle"].metrics.value(
        metric
    )
    assert by_name["round_robin"].gap_to_oracle == pytest.approx(expected - 1)
    assert by_name["oracle"].gap_to_oracle == 0.0
    assert run_experiment(synthetic_problem(50), ["greedy"], 0)[0].gap_to_oracle is None


@pytest.mark.parametrize("rank_by", ["makespan", "mean_flow_time", "mean_slowdown", "cost"])
def test_outcomes_come_best_first_by_the_rank_metric(context, rank_by):
    problem = synthetic_problem(300)
    outcomes = run_experiment(problem, POLICY_NAMES, 2, context=context, rank_by=rank_by)
    values = [o.metrics.value(rank_by) for o in outcomes]
    assert values == sorted(values)
    assert {o.policy for o in outcomes} == set(POLICY_NAMES)


def test_rl_hands_back_what_it_learned():
    outcome = run_experiment(synthetic_problem(200), ["rl"], 0)[0]
    assert outcome.learned_state is not None and outcome.learned_state["steps"] == 200


def test_policy_streams_differ_by_policy_and_seed():
    draw = lambda seed, name: policy_rng(seed, name).random()  # noqa: E731
    assert draw(1, "random") == draw(1, "random")
    assert len({draw(1, "random"), draw(2, "random"), draw(1, "rl")}) == 3


def test_an_experiment_reports_each_phase_in_order_and_reporting_changes_no_result(
    context, monkeypatch
):
    from app.ml import performance_model

    monkeypatch.setattr(performance_model, "PREDICT_CHUNK", 2000)  # 5 pieces per device model
    problem = synthetic_problem(2 * PROGRESS_EVERY + 1)  # 3 chunks of the engine per policy
    reports = []
    policies = ["round_robin", "learned"]
    reported = run_experiment(problem, policies, 4, lambda *report: reports.append(report), context)
    phases = [phase for phase, _ in groupby(phase for _, phase in reports)]
    assert phases == [
        "simulating round_robin (1/2)",
        "simulating learned (2/2)",
        "computing metrics",
        "computing metrics (1/2)",
        "computing metrics (2/2)",
    ]
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] < 1
    # learned's predictions (10 pieces) and its simulation (3 chunks) each report
    assert sum(phase == "simulating learned (2/2)" for _, phase in reports) >= 10 + 3
    silent = run_experiment(problem, policies, 4, context=context)
    for a, b in zip(reported, silent, strict=True):
        assert a.policy == b.policy and a.metrics == b.metrics
        assert all(np.array_equal(getattr(a.schedule, f), getattr(b.schedule, f)) for f in FIELDS)
