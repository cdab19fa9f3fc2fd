import numpy as np
import pytest

from app.sim.cluster import Cluster
from app.sim.engine import simulate
from app.sim.experiment import run_experiment
from app.sim.invariants import violations
from app.sim.kernel import _rls_update
from app.sim.policies import POLICY_NAMES, PolicyContext, make_policy
from app.sim.policies.rl import Rl, merge_learning, task_features
from app.sim.problem import Problem
from app.sim.ranks import upward_rank
from app.sim.workload import Workload
from tests.unit.sim.conftest import layered_problem, synthetic_problem, topcuoglu_problem


def schedule_of(problem, name, context=None, seed=0):
    s = simulate(problem, make_policy(name, context), np.random.default_rng(seed))
    assert violations(problem, s) == []
    return s


def uniform_problem(n: int, cpus: int, gpus: int = 0) -> Problem:
    w = Workload(
        size=np.full(n, 40.0), intensity=np.zeros(n), memory=np.ones(n), arrival=np.zeros(n)
    )
    return Problem.build(w, Cluster.homogeneous_kinds(cpus=cpus, gpus=gpus))


def test_heft_on_the_canonical_topcuoglu_example_gives_makespan_80():
    problem = topcuoglu_problem()
    assert upward_rank(problem).round(2).tolist() == [
        108.0,
        77.0,
        80.0,
        80.0,
        69.0,
        63.33,
        42.67,
        35.67,
        44.33,
        14.67,
    ]
    s = schedule_of(problem, "heft")
    assert s.end.max() == 80.0
    # The paper's schedule: n1 on P3 at 0, n10 on P2 ending at 80.
    assert (s.device[0], s.start[0]) == (2, 0.0) and (s.device[9], s.end[9]) == (1, 80.0)


def test_round_robin_takes_devices_in_turn():
    assert schedule_of(uniform_problem(7, cpus=3), "round_robin").device.tolist() == [
        0,
        1,
        2,
        0,
        1,
        2,
        0,
    ]


def test_greedy_picks_the_fastest_device_even_when_it_is_busy():
    cluster = Cluster.homogeneous_kinds(1, 1)
    w = Workload(
        size=np.full(3, 100.0), intensity=np.ones(3), memory=np.ones(3), arrival=np.zeros(3)
    )
    s = schedule_of(Problem.build(w, cluster), "greedy")
    assert s.device.tolist() == [1, 1, 1]  # queues on the GPU, never uses the idle core


def test_eft_uses_the_idle_core_once_the_gpu_queue_is_long_enough():
    cluster = Cluster.homogeneous_kinds(1, 1)
    w = Workload(
        size=np.full(40, 100.0),
        intensity=np.full(40, 0.8),
        memory=np.ones(40),
        arrival=np.zeros(40),
    )
    s = schedule_of(Problem.build(w, cluster), "eft")
    assert 0 < (s.device == 0).sum() < 40


def test_cpu_only_and_gpu_only_stay_on_their_kind():
    problem = synthetic_problem(500)
    gpus = problem.cluster.gpus
    assert not np.isin(schedule_of(problem, "cpu_only").device, gpus).any()
    gpu_only = schedule_of(problem, "gpu_only")
    fits_a_gpu = problem.feasible[:, gpus].any(axis=1)
    assert np.isin(gpu_only.device[fits_a_gpu], gpus).all()


def test_random_spreads_over_devices_and_depends_only_on_the_seed():
    p = uniform_problem(4000, cpus=4)
    a, b, c = (schedule_of(p, "random", seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.device, b.device) and not np.array_equal(a.device, c.device)
    assert np.bincount(a.device, minlength=4).min() > 900


def test_oracle_splits_tasks_and_bounds_the_others(context):
    for problem in (synthetic_problem(1500, arrival_rate=400.0), layered_problem(300)):
        outcomes = {o.policy: o for o in run_experiment(problem, POLICY_NAMES, 0, context=context)}
        oracle = outcomes["oracle"]
        assert (oracle.schedule.partner >= 0).sum() > 0  # it does use splits
        # Greedy per task, so not a proof of optimality, but within 3 % of the best policy.
        assert oracle.metrics.makespan <= min(o.metrics.makespan for o in outcomes.values()) * 1.03
        assert oracle.gap_to_oracle == 0.0


class SwappedModel:
    """A badly wrong performance model: it predicts each device's time as the other kind's."""

    version = "swapped"

    def predict_times(self, problem, on_progress=None):
        times = problem.exec_time.copy()
        cpus, gpus = problem.cluster.cpus, problem.cluster.gpus
        times[:, cpus] = problem.exec_time[:, gpus[:1]]
        times[:, gpus] = problem.exec_time[:, cpus[:1]]
        return times


def test_learned_is_as_good_as_its_model(context):
    problem = synthetic_problem(3000, arrival_rate=100.0)
    good = schedule_of(problem, "learned", context)
    bad = schedule_of(problem, "learned", PolicyContext(performance_model=SwappedModel()))
    flow = lambda s: float(np.mean(s.end - problem.workload.arrival))  # noqa: E731
    assert flow(good) < flow(bad) / 2


def test_the_learned_policy_needs_a_model():
    with pytest.raises(ValueError, match="performance model"):
        make_policy("learned")


def test_rl_learns_durations_within_a_run_and_its_state_round_trips():
    problem = synthetic_problem(4000, arrival_rate=300.0)
    agent = make_policy("rl")
    simulate(problem, agent, np.random.default_rng(0))
    assert isinstance(agent, Rl) and agent.steps == 4000
    # Its model of a CPU core's time now tracks the truth (ln-space error well under 1).
    w = problem.workload
    predicted = agent.predicted_duration("cpu", task_features(w.size, w.intensity, w.memory))
    truth = np.log(problem.exec_time[:, 0])
    assert np.median(np.abs(predicted - truth)) < 0.3
    restored = Rl(agent.state())
    assert restored.state() == agent.state()


def test_a_warm_started_rl_agent_does_better_early_than_a_fresh_one():
    first, second = (
        synthetic_problem(3000, seed=1, arrival_rate=300.0),
        synthetic_problem(300, seed=2, arrival_rate=300.0),
    )
    trained = make_policy("rl")
    simulate(first, trained, np.random.default_rng(0))
    warm = simulate(second, Rl(trained.state()), np.random.default_rng(1))
    fresh = simulate(second, Rl(), np.random.default_rng(1))
    flow = lambda s: float(np.mean(s.end - second.workload.arrival))  # noqa: E731
    assert flow(warm) < flow(fresh)


def test_rl_refuses_a_state_from_another_agent_version():
    state = Rl().state()
    with pytest.raises(ValueError, match="incompatible"):
        Rl({**state, "version": 99})


def _observed(agent: Rl, seed: int, count: int) -> Rl:
    """`agent` after RLS steps on `count` random observations per action (a copy)."""
    rng = np.random.default_rng(seed)
    agent = Rl(agent.state())
    for action in range(3):
        for _ in range(count):
            x = task_features(rng.lognormal(0, 1, 1), rng.random(1), rng.lognormal(3, 1, 1))[0]
            _rls_update(agent.weights[action], agent.covariance[action], x, rng.normal(x.sum()))
    agent.steps += count
    return agent


@pytest.mark.parametrize("start", [None, 0])
def test_two_runs_learning_from_the_same_start_merge_as_if_seen_one_after_the_other(start):
    base = Rl() if start is None else _observed(Rl(), seed=start, count=50)
    first, second = _observed(base, seed=1, count=40), _observed(base, seed=2, count=30)
    both = _observed(first, seed=2, count=30)  # second's observations, after first's
    merged = Rl(
        merge_learning(first.state(), None if start is None else base.state(), second.state())
    )
    assert merged.steps == both.steps == base.steps + 70
    np.testing.assert_allclose(merged.weights, both.weights, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(merged.covariance, both.covariance, rtol=1e-6, atol=1e-12)
    # Neither run's learning is lost: the merge differs from each run alone.
    assert not np.allclose(merged.weights, first.weights)
    assert not np.allclose(merged.weights, second.weights)
