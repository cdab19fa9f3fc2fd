import numpy as np
import pytest

from app.sim.experiment import policy_rng, run_experiment
from app.sim.policies import POLICY_NAMES
from tests.unit.sim.conftest import layered_problem, synthetic_problem


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


def test_a_policys_result_does_not_depend_on_the_other_policies_in_the_run():
    problem = synthetic_problem(500)
    alone = run_experiment(problem, ["random"], 3)[0]
    with_others = run_experiment(problem, ["greedy", "rl", "random"], 3)[2]
    assert np.array_equal(alone.schedule.device, with_others.schedule.device)


def test_gaps_to_oracle_are_relative_makespan_differences(context):
    outcomes = run_experiment(synthetic_problem(400), ["round_robin", "oracle"], 0, context=context)
    by_name = {o.policy: o for o in outcomes}
    expected = by_name["round_robin"].metrics.makespan / by_name["oracle"].metrics.makespan - 1
    assert by_name["round_robin"].gap_to_oracle == pytest.approx(expected)
    assert by_name["oracle"].gap_to_oracle == 0.0
    assert run_experiment(synthetic_problem(50), ["greedy"], 0)[0].gap_to_oracle is None


def test_rl_hands_back_what_it_learned():
    outcome = run_experiment(synthetic_problem(200), ["rl"], 0)[0]
    assert outcome.learned_state is not None and outcome.learned_state["steps"] == 200


def test_policy_streams_differ_by_policy_and_seed():
    draw = lambda seed, name: policy_rng(seed, name).random()  # noqa: E731
    assert draw(1, "random") == draw(1, "random")
    assert len({draw(1, "random"), draw(2, "random"), draw(1, "rl")}) == 3
