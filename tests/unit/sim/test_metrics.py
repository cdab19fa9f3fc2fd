import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU, Cluster
from app.sim.engine import simulate
from app.sim.generators import LayeredDagParams, SyntheticParams, layered_dag, synthetic_workload
from app.sim.metrics import heterogeneity_factor, summarize
from app.sim.policies import POLICY_NAMES, make_policy
from app.sim.problem import Problem
from app.sim.schedule import Schedule
from app.sim.workload import Workload


def test_metrics_of_a_hand_made_schedule():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = Workload(
        size=np.full(3, 40.0),
        intensity=np.zeros(3),
        memory=np.ones(3),
        arrival=np.array([0.0, 1.0, 2.0]),
    )
    schedule = Schedule(
        device=np.array([0, 1, 0]),
        partner=np.full(3, -1),
        gpu_fraction=np.array([0.0, 1.0, 0.0]),
        start=np.array([0.0, 1.0, 2.0]),
        end=np.array([2.0, 2.0, 4.0]),
    )
    m = summarize(Problem.build(w, cluster), schedule)
    assert m.makespan == 4.0
    assert m.mean_flow_time == pytest.approx((2 + 1 + 2) / 3)
    assert m.p95_flow_time == pytest.approx(2.0)
    assert m.utilization == {"cpu0": 1.0, "gpu0": 0.25}
    assert m.mean_utilization == pytest.approx(0.625)
    assert m.energy == pytest.approx(
        4 * DEFAULT_CPU.power_busy + 1 * DEFAULT_GPU.power_busy + 3 * DEFAULT_GPU.power_idle
    )
    assert m.cost == pytest.approx((DEFAULT_CPU.price + DEFAULT_GPU.price) * 4 / 3600)
    # No chain: the critical path is one task at its fastest, split between the core (1 s whole)
    # and the GPU (4 s whole: the work is serial) at f* = (1 - L) / (1 + E_gpu - L).
    e_gpu = 40.0 / DEFAULT_GPU.scalar_speed + DEFAULT_GPU.latency + 1.0 / DEFAULT_GPU.bandwidth
    share = (1.0 - DEFAULT_GPU.latency) / (1.0 + e_gpu - DEFAULT_GPU.latency)
    assert m.slr == pytest.approx(4.0 / (1.0 - share))
    assert m.speedup == pytest.approx(3.0 / 4.0)  # 3 s on the core alone, 4 s here


def test_a_split_counts_as_busy_time_on_both_devices():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = Workload(size=np.ones(1), intensity=np.ones(1), memory=np.ones(1), arrival=np.zeros(1))
    split = Schedule(
        np.array([1]), np.array([0]), np.array([0.5]), np.array([0.0]), np.array([2.0])
    )
    assert summarize(Problem.build(w, cluster), split).utilization == {"cpu0": 1.0, "gpu0": 1.0}


def test_heterogeneous_devices_can_exceed_a_speedup_of_their_number():
    """Why the speedup bound is devices x heterogeneity: here one core and one GPU, each ~40x
    faster than the other on half the tasks, beat the best single device by far more than 2x."""
    n = 200
    w = Workload(
        size=np.full(n, 100.0),
        intensity=np.tile([0.0, 1.0], n // 2),
        memory=np.ones(n),
        arrival=np.zeros(n),
    )
    problem = Problem.build(w, Cluster.homogeneous_kinds(1, 1))
    m = summarize(problem, simulate(problem, make_policy("heft"), np.random.default_rng(0)))
    assert m.speedup > 2
    assert m.speedup <= 2 * heterogeneity_factor(problem) + 1e-9


workloads = st.one_of(
    st.builds(
        lambda n, seed, rate, p: synthetic_workload(
            SyntheticParams(num_tasks=n, arrival_rate=rate, dependency_probability=p),
            np.random.default_rng(seed),
        ),
        st.integers(1, 120),
        st.integers(0, 2**32),
        st.floats(1.0, 5000.0),
        st.sampled_from([0.0, 0.5]),
    ),
    st.builds(
        lambda n, seed, width, ccr: layered_dag(
            LayeredDagParams(num_tasks=n, width=width, ccr=ccr), np.random.default_rng(seed)
        ),
        st.integers(1, 120), st.integers(0, 2**32), st.floats(0.1, 1.0), st.floats(0.0, 5.0),
    ),
)  # fmt: skip
clusters = st.tuples(st.integers(0, 6), st.integers(0, 3)).filter(lambda c: sum(c) > 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    workload=workloads,
    shape=clusters,
    policy=st.sampled_from([p for p in POLICY_NAMES if p != "learned"]),
)
def test_slr_is_at_least_1_and_speedup_within_its_bound(workload, shape, policy):
    cluster = Cluster.homogeneous_kinds(*shape)
    if not (workload.memory[:, None] <= cluster.memory[None, :]).any(axis=1).all():
        return  # a task that fits nowhere is refused before simulation (tested elsewhere)
    problem = Problem.build(workload, cluster)
    m = summarize(problem, simulate(problem, make_policy(policy), np.random.default_rng(0)))
    assert m.slr >= 1 - 1e-9
    assert m.speedup <= cluster.num_devices * heterogeneity_factor(problem) * (1 + 1e-9)
    if shape[0] == 0 or shape[1] == 0:  # identical devices: the classic bound
        assert m.speedup <= cluster.num_devices * (1 + 1e-9)
