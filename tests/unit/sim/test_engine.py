import numpy as np
import pytest

from app.runspec import RunSpec, build_problem
from app.sim.cluster import Cluster
from app.sim.engine import PolicyError, simulate
from app.sim.policies import POLICY_NAMES, make_policy
from app.sim.policies.base import Policy
from app.sim.problem import Infeasible, Problem
from app.sim.schedule import Schedule
from app.sim.workload import Workload


def problem(num_tasks: int = 3000, seed: int = 5, cpus: int = 4, gpus: int = 2) -> Problem:
    spec = RunSpec.model_validate(
        {
            "workload": {"kind": "synthetic", "num_tasks": num_tasks, "seed": seed},
            "cluster": {"cpus": cpus, "gpus": gpus},
            "policies": ["greedy"],
        }
    )
    return build_problem(spec)


def assert_valid(p: Problem, s: Schedule) -> None:
    """No overlap on any device, no start before arrival, durations from the cost table, and
    every task on a device its data fits."""
    tasks = np.arange(p.num_tasks)
    assert np.all(s.start >= p.workload.arrival)
    assert np.allclose(s.end - s.start, p.exec_time[tasks, s.device])
    assert np.all(p.feasible[tasks, s.device])
    for device in range(p.num_devices):
        on_device = np.flatnonzero(s.device == device)
        order = on_device[np.argsort(s.start[on_device], kind="stable")]
        assert np.all(s.start[order][1:] >= s.end[order][:-1] - 1e-9)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_policy_produces_a_valid_schedule(policy):
    p = problem()
    schedule = simulate(p, make_policy(policy), np.random.default_rng(0))
    assert_valid(p, schedule)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_same_problem_and_seed_give_identical_schedules(policy):
    a = simulate(problem(), make_policy(policy), np.random.default_rng(9))
    b = simulate(problem(), make_policy(policy), np.random.default_rng(9))
    for field in ("device", "start", "end", "gpu_fraction"):
        assert np.array_equal(getattr(a, field), getattr(b, field))


def test_a_task_too_big_for_the_gpus_runs_on_a_cpu():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=3)
    big = cluster.memory[1] + 1
    w = Workload(
        size=np.full(4, 500.0),
        intensity=np.full(4, 1.0),  # GPUs would be far faster...
        memory=np.array([10.0, big, 10.0, big]),
        arrival=np.zeros(4),
    )
    p = Problem.build(w, cluster)
    for name in POLICY_NAMES:
        s = simulate(p, make_policy(name), np.random.default_rng(0))
        assert s.device[1] == 0 and s.device[3] == 0  # ...but these do not fit on them


def test_a_task_that_fits_nowhere_is_rejected_before_simulation():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = Workload(size=np.ones(1), intensity=np.ones(1), memory=np.array([1e9]), arrival=np.zeros(1))
    with pytest.raises(Infeasible, match="fit on no device"):
        Problem.build(w, cluster)


def test_a_device_runs_its_queue_first_come_first_served():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=0)
    w = Workload(
        size=np.array([40.0, 40.0, 40.0]),  # 1 s each on a default core
        intensity=np.zeros(3),
        memory=np.ones(3),
        arrival=np.array([0.0, 0.5, 5.0]),
    )
    s = simulate(Problem.build(w, cluster), make_policy("greedy"), np.random.default_rng(0))
    assert s.start.tolist() == pytest.approx([0.0, 1.0, 5.0])
    assert s.end.tolist() == pytest.approx([1.0, 2.0, 6.0])


def test_a_policy_that_breaks_the_memory_rule_is_stopped():
    class AlwaysGpu(Policy):
        name = "always_gpu"

        def place(self, task, ready, free_at):
            return 1

    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = Workload(
        size=np.ones(1),
        intensity=np.ones(1),
        memory=np.array([cluster.memory[1] + 1]),
        arrival=np.zeros(1),
    )
    with pytest.raises(PolicyError, match="does not fit"):
        simulate(Problem.build(w, cluster), AlwaysGpu(), np.random.default_rng(0))


def test_progress_is_reported_up_to_completion():
    seen: list[float] = []
    simulate(
        problem(num_tasks=10_000), make_policy("round_robin"), np.random.default_rng(0), seen.append
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen) and len(seen) >= 3
