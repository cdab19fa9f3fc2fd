import numpy as np

from app.sim.cluster import Cluster
from app.sim.engine import simulate
from app.sim.policies import make_policy
from app.sim.problem import Problem
from app.sim.workload import Workload


def uniform_problem(n: int, cpus: int, gpus: int = 0, memory: float = 1.0) -> Problem:
    w = Workload(
        size=np.full(n, 40.0),
        intensity=np.zeros(n),
        memory=np.full(n, memory),
        arrival=np.zeros(n),
    )
    return Problem.build(w, Cluster.homogeneous_kinds(cpus=cpus, gpus=gpus))


def test_round_robin_takes_devices_in_turn():
    s = simulate(uniform_problem(7, cpus=3), make_policy("round_robin"), np.random.default_rng(0))
    assert s.device.tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_skips_devices_the_task_does_not_fit():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=2)
    w = Workload(
        size=np.ones(4),
        intensity=np.ones(4),
        memory=np.array([1.0, cluster.memory[1] + 1, 1.0, 1.0]),
        arrival=np.zeros(4),
    )
    s = simulate(Problem.build(w, cluster), make_policy("round_robin"), np.random.default_rng(0))
    assert s.device.tolist() == [0, 0, 1, 2]


def test_greedy_picks_the_earliest_finish_time():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    # Task 0: data-parallel, far faster on the GPU. Task 1: serial, faster on the CPU core.
    w = Workload(
        size=np.array([100.0, 10.0]),
        intensity=np.array([1.0, 0.0]),
        memory=np.ones(2),
        arrival=np.zeros(2),
    )
    p = Problem.build(w, cluster)
    s = simulate(p, make_policy("greedy"), np.random.default_rng(0))
    assert s.device.tolist() == [1, 0]
    assert np.argmin(p.exec_time[0]) == 1 and np.argmin(p.exec_time[1]) == 0


def test_greedy_waits_for_a_fast_busy_device_only_when_it_pays():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = Workload(
        size=np.array([1000.0, 1000.0]),
        intensity=np.ones(2),
        memory=np.ones(2),
        arrival=np.zeros(2),
    )
    s = simulate(Problem.build(w, cluster), make_policy("greedy"), np.random.default_rng(0))
    # 1000 GFLOP: ~0.67 s on the GPU, 25 s on the core: queueing behind the GPU is better.
    assert s.device.tolist() == [1, 1]


def test_random_spreads_over_devices_and_depends_only_on_the_seed():
    p = uniform_problem(4000, cpus=4)
    a = simulate(p, make_policy("random"), np.random.default_rng(1))
    b = simulate(p, make_policy("random"), np.random.default_rng(1))
    c = simulate(p, make_policy("random"), np.random.default_rng(2))
    assert np.array_equal(a.device, b.device) and not np.array_equal(a.device, c.device)
    counts = np.bincount(a.device, minlength=4)
    assert counts.min() > 900  # ~1000 each
