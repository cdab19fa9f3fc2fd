import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from app.sim.bounds import fluid_time, makespan_lower_bound, path_bound, work_bound
from app.sim.cluster import Cluster
from app.sim.engine import simulate
from app.sim.experiment import run_experiment
from app.sim.generators import LayeredDagParams, SyntheticParams, layered_dag, synthetic_workload
from app.sim.invariants import violations
from app.sim.knowledge import Knowledge, Scenario
from app.sim.policies import POLICY_NAMES, make_policy
from app.sim.problem import Problem
from app.sim.workload import Workload
from tests.unit.sim.conftest import V100, V100_MIX, topcuoglu_problem

INF = np.inf


def groups(*sizes: int) -> list[np.ndarray]:
    """Consecutive device indices, `sizes[k]` devices in group k."""
    edges = np.cumsum((0, *sizes))
    return [np.arange(a, b) for a, b in itertools.pairwise(edges)]


def fluid(times: list[list[float]], sizes: tuple[int, ...]) -> float:
    """fluid_time of per-group times (one column per group, inf: does not fit), each group's
    column repeated for its devices."""
    per_group = np.array(times, float)
    exec_time = np.repeat(per_group, sizes, axis=1)
    feasible = np.isfinite(exec_time)
    return fluid_time(np.where(feasible, exec_time, 1.0), feasible, groups(*sizes))


# The makespan lower bound holds for every policy


workloads = st.one_of(
    st.builds(
        lambda n, seed, p: synthetic_workload(
            SyntheticParams(
                num_tasks=n, arrival_rate=2000.0, dependency_probability=p, mix=V100_MIX
            ),
            np.random.default_rng(seed),
        ),
        st.integers(20, 200), st.integers(0, 2**32), st.sampled_from([0.0, 0.4]),
    ),
    st.builds(
        lambda n, seed, width, ccr: layered_dag(
            LayeredDagParams(num_tasks=n, width=width, ccr=ccr, mix=V100_MIX),
            np.random.default_rng(seed),
        ),
        st.integers(20, 200), st.integers(0, 2**32), st.floats(0.2, 1.0), st.floats(0.0, 3.0),
    ),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    workload=workloads,
    cpus=st.integers(1, 6),
    gpus=st.integers(0, 3),
    seed=st.integers(0, 2**32),
    knowledge=st.sampled_from(list(Knowledge)),
)
def test_no_policy_beats_the_lower_bound(context, workload, cpus, gpus, seed, knowledge):
    cluster = Cluster.homogeneous_kinds(cpus, gpus)
    scenario = Scenario.build(workload, cluster, V100, seed, knowledge)
    bound = makespan_lower_bound(scenario.truth)
    assert bound > 0
    for name in POLICY_NAMES:
        schedule = simulate(scenario, make_policy(name, context), np.random.default_rng(seed))
        assert violations(scenario.truth, schedule) == [], name
        assert schedule.end.max() >= bound * (1 - 1e-9), name


def test_no_policy_beats_the_lower_bound_of_the_heft_paper_example(context):
    problem = topcuoglu_problem()
    bound = makespan_lower_bound(problem)
    assert bound == 41.0  # the path 1 -> 2 -> 9 -> 10 at 9 + 13 + 12 + 7
    for name in POLICY_NAMES:
        schedule = simulate(problem, make_policy(name, context), np.random.default_rng(0))
        assert schedule.end.max() >= bound, name


# Fluid time


def test_two_groups_each_take_the_tasks_they_are_fast_for():
    assert fluid([[2.0, 4.0], [4.0, 2.0]], (1, 1)) == 2.0


def test_the_fluid_shares_a_task_so_both_groups_finish_together():
    # 3x = 6 (1 - x): x = 2/3 on the first group, both done at 2.
    assert fluid([[3.0, 6.0]], (1, 1)) == pytest.approx(2.0, rel=1e-15)
    # Two devices in the first group: x * 4 / 2 = (1 - x) * 4, x = 2/3.
    assert fluid([[4.0, 4.0]], (2, 1)) == pytest.approx(4.0 / 3.0, rel=1e-15)
    # Both tasks are 100x faster on the first group, which still sheds a share of one:
    # 2 - y = 100 y.
    assert fluid([[1.0, 100.0], [1.0, 100.0]], (1, 1)) == pytest.approx(200 / 101, rel=1e-15)


def test_a_task_that_fits_one_group_only_goes_there():
    # Task 0 fits only the first group; task 1 is shared: 1 + 5x = 5 (1 - x), x = 0.4.
    assert fluid([[1.0, INF], [5.0, 5.0]], (1, 1)) == pytest.approx(3.0, rel=1e-15)
    # The forced work alone outweighs everything the second group could take.
    assert fluid([[10.0, INF], [1.0, 1.0]], (1, 1)) == 10.0
    assert fluid([[INF, 10.0], [1.0, 1.0]], (1, 1)) == 10.0


def test_one_group_shares_all_work_over_its_devices():
    assert fluid([[3.0], [6.0], [9.0]], (3,)) == 6.0


def test_more_than_two_groups_use_each_tasks_fastest_time_over_all_devices():
    times = np.array([[1.0, 2.0, 3.0], [6.0, 5.0, 4.0]])
    assert fluid_time(times, np.ones((2, 3), bool), groups(1, 1, 1)) == pytest.approx(5.0 / 3)
    fits = np.array([[False, True, True], [True, True, True]])
    assert fluid_time(times, fits, groups(1, 1, 1)) == pytest.approx(6.0 / 3)


@settings(max_examples=40, deadline=None)
@given(
    times=st.lists(
        st.tuples(
            st.floats(0.01, 100.0), st.floats(0.01, 100.0), st.sampled_from(["ab", "a", "b"])
        ),
        min_size=1,
        max_size=8,
    ),
    sizes=st.tuples(st.integers(1, 4), st.integers(1, 4)),
)
def test_two_group_fluid_time_is_the_optimum_of_its_linear_program(times, sizes):
    a = np.array([t if "a" in fits else INF for t, _, fits in times])
    b = np.array([t if "b" in fits else INF for _, t, fits in times])
    n = a.size
    # Variables: x_1..x_n (share on the first group), F. Minimize F subject to
    # sum x a / n_a <= F and sum (1 - x) b / n_b <= F.
    a_cost, b_cost = np.where(np.isfinite(a), a, 0.0), np.where(np.isfinite(b), b, 0.0)
    constraints = np.array(
        [[*(a_cost / sizes[0]), -1.0], [*(-b_cost / sizes[1]), -1.0]],
    )
    limits = [0.0, -b_cost.sum() / sizes[1]]
    shares = [(1.0, 1.0) if not np.isfinite(bi) else (0.0, 0.0) if not np.isfinite(ai)
              else (0.0, 1.0) for ai, bi in zip(a, b, strict=True)]  # fmt: skip
    optimum = linprog(
        np.r_[np.zeros(n), 1.0], A_ub=constraints, b_ub=limits, bounds=[*shares, (0, None)]
    )
    assert optimum.success
    got = fluid(np.column_stack([a, b]).tolist(), sizes)
    assert got == pytest.approx(optimum.fun, rel=1e-7, abs=1e-9)


# Path bound


def chain(sizes, arrivals=None, edges=None) -> Workload:
    n = len(sizes)
    return Workload.from_edges(
        size=np.array(sizes, float),
        intensity=np.zeros(n),
        memory=np.ones(n),
        arrival=np.zeros(n) if arrivals is None else np.array(arrivals, float),
        edges=[(i, i + 1) for i in range(n - 1)] if edges is None else edges,
    )


def test_the_path_bound_of_a_chain_is_the_sum_of_its_fastest_times():
    on_cores = Problem.build(chain([40.0, 80.0, 120.0]), Cluster.homogeneous_kinds(2, 0))
    assert path_bound(on_cores) == pytest.approx(1.0 + 2.0 + 3.0)  # 40 GFLOP/s per core
    mixed = Problem.build(chain([40.0, 80.0, 120.0]), Cluster.homogeneous_kinds(2, 1))
    assert mixed.min_time.max() < 3.0  # a split beats a core alone
    assert path_bound(mixed) == pytest.approx(mixed.min_time.sum(), rel=1e-12)


def test_the_path_bound_counts_arrivals():
    cluster = Cluster.homogeneous_kinds(1, 0)
    late_child = Problem.build(chain([40.0, 80.0, 120.0], [0.0, 10.0, 0.0]), cluster)
    assert path_bound(late_child) == pytest.approx(10.0 + 2.0 + 3.0)
    independent = Problem.build(chain([40.0, 40.0], [0.0, 7.0], edges=[]), cluster)
    assert path_bound(independent) == pytest.approx(8.0)


def test_the_lower_bound_is_the_larger_of_the_work_and_path_bounds():
    cluster = Cluster.homogeneous_kinds(2, 0)
    long_chain = Problem.build(chain([40.0] * 4), cluster)
    assert (work_bound(long_chain), path_bound(long_chain)) == pytest.approx((2.0, 4.0))
    assert makespan_lower_bound(long_chain) == pytest.approx(4.0)
    wide = Problem.build(chain([40.0] * 6, edges=[]), cluster)
    assert (work_bound(wide), path_bound(wide)) == pytest.approx((3.0, 1.0))
    assert makespan_lower_bound(wide) == pytest.approx(3.0)


# In results


def test_results_report_the_gap_to_the_bound_of_the_truth(context):
    params = LayeredDagParams(num_tasks=120, mix=V100_MIX)
    workload = layered_dag(params, np.random.default_rng(2))
    scenario = Scenario.build(workload, Cluster.homogeneous_kinds(3, 1), V100, seed=1)
    bound = makespan_lower_bound(scenario.truth)
    assert bound != makespan_lower_bound(scenario.estimate)
    for outcome in run_experiment(scenario, POLICY_NAMES, seed=0, context=context):
        metrics = outcome.metrics
        assert metrics.lower_bound == bound
        assert metrics.gap_to_bound == pytest.approx((metrics.makespan - bound) / bound)
        assert metrics.gap_to_bound >= -1e-9


def test_the_gap_to_the_bound_is_undefined_when_the_bound_is_zero():
    nothing = Workload(size=np.zeros(3), intensity=np.zeros(3), memory=np.zeros(3),
                       arrival=np.zeros(3))  # fmt: skip
    [outcome] = run_experiment(Problem.build(nothing, Cluster.homogeneous_kinds(1, 0)), ["eft"], 0)
    assert outcome.metrics.lower_bound == 0.0 and outcome.metrics.gap_to_bound is None
