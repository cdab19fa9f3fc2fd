from dataclasses import replace

import numpy as np
import pytest

from app.sim import costs
from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU, Cluster, DeviceKind
from app.sim.generators import SyntheticParams, synthetic_workload
from app.sim.knowledge import Scenario
from app.sim.truth import (
    LOWEST_EFFICIENCY,
    Hardware,
    category_efficiency,
    noise,
    systematic_time,
    true_execution_time,
)
from app.sim.workload import Workload
from tests.unit.sim.conftest import topcuoglu_problem

CPU, GPU = int(DeviceKind.CPU), int(DeviceKind.GPU)


def tasks(size, memory, category=None, names=("k0",), intensity=0.0) -> Workload:
    n = len(size)
    return Workload(
        size=np.array(size, float),
        intensity=np.full(n, intensity),
        memory=np.array(memory, float),
        arrival=np.zeros(n),
        category=np.zeros(n, np.int32) if category is None else np.array(category, np.int32),
        category_names=names,
    )


def synthetic(n: int = 400, seed: int = 1) -> Workload:
    return synthetic_workload(SyntheticParams(num_tasks=n), np.random.default_rng(seed))


# Roofline


def test_a_core_is_compute_bound_below_its_balance_point_and_memory_bound_above_it():
    # A default core has speed == scalar speed, so compute = S / R whatever the intensity, and
    # the task is memory-bound once M / (1000 BW) exceeds S / (R eff): M / S above 1000 BW /
    # (R eff) MB per GFLOP.
    seed, size = 3, 4.0
    eff = category_efficiency(("stream",), seed)[0, CPU]
    balance = 1000.0 * DEFAULT_CPU.memory_bandwidth / (DEFAULT_CPU.speed * eff)
    below, at, above = (size * balance * factor for factor in (1 - 1e-6, 1.0, 1 + 1e-6))
    workload = tasks([size] * 3, [below, at, above], names=("stream",), intensity=0.7)
    times = systematic_time(workload, Cluster.homogeneous_kinds(1, 0), Hardware(seed=seed))[:, 0]
    compute = size / (DEFAULT_CPU.speed * eff)
    assert times[0] == pytest.approx(compute, rel=1e-12)
    assert times[2] == pytest.approx(above / (1000.0 * DEFAULT_CPU.memory_bandwidth), rel=1e-12)
    assert times[2] > times[0]
    assert times[1] == pytest.approx(compute, rel=1e-12)  # continuous at the boundary
    assert times[1] == pytest.approx(at / (1000.0 * DEFAULT_CPU.memory_bandwidth), rel=1e-12)


def test_a_memory_bound_task_takes_as_long_whatever_its_work():
    workload = tasks([0.01, 0.02], [500.0, 500.0])
    times = systematic_time(workload, Cluster.homogeneous_kinds(1, 0), Hardware())[:, 0]
    assert times.tolist() == [500.0 / (1000.0 * DEFAULT_CPU.memory_bandwidth)] * 2


# Category efficiency


def test_category_efficiency_is_a_function_of_the_seed_and_the_name():
    names = ("k0", "k1", "fft", "gemm")
    first = category_efficiency(names, seed=11)
    assert first.shape == (4, 2)
    np.testing.assert_array_equal(first, category_efficiency(names, seed=11))
    assert np.all((first > 0) & (first <= 1))
    assert LOWEST_EFFICIENCY == {DeviceKind.CPU: 0.5, DeviceKind.GPU: 0.05}
    assert np.all(first[:, GPU] >= 0.05) and np.all(first[:, CPU] >= 0.5)


def test_a_category_gets_the_same_efficiency_whatever_else_the_workload_holds():
    alone = category_efficiency(("gemm",), seed=4)
    among_others = category_efficiency(("fft", "stencil", "gemm"), seed=4)
    np.testing.assert_array_equal(alone[0], among_others[2])


def test_a_task_runs_alike_in_every_workload_on_the_same_hardware():
    cluster, hardware = Cluster.homogeneous_kinds(1, 1), Hardware(seed=4, noise_sigma=0.0)
    alone = tasks([50.0], [10.0], names=("gemm",), intensity=0.9)
    mixed = tasks([5.0, 50.0], [1.0, 10.0], [0, 1], names=("fft", "gemm"), intensity=0.9)
    np.testing.assert_array_equal(
        systematic_time(alone, cluster, hardware)[0], systematic_time(mixed, cluster, hardware)[1]
    )


def test_another_hardware_seed_gives_other_efficiencies():
    names = tuple(f"k{c}" for c in range(8))
    assert not np.any(category_efficiency(names, 0) == category_efficiency(names, 1))


def test_gpu_efficiencies_spread_widely_and_cpu_ones_stay_above_one_half():
    names = tuple(f"kernel{c}" for c in range(300))
    table = category_efficiency(names, seed=0)
    gpu, cpu = table[:, GPU], table[:, CPU]
    # Log-uniform on [0.05, 1]: P(eff < 0.2) = ln 4 / ln 20 = 0.46, P(eff > 0.8) = 0.07.
    assert 0.3 < np.mean(gpu < 0.2) < 0.6
    assert np.any(gpu > 0.8)
    assert cpu.min() >= 0.5 and np.mean(cpu < 0.6) > 0.1
    assert np.median(np.log(gpu)) == pytest.approx(np.log(np.sqrt(0.05)), abs=0.3)


def test_tasks_differing_only_in_category_differ_on_the_gpu_by_their_efficiency_ratio():
    seed = 2
    cluster, hardware = Cluster.homogeneous_kinds(0, 1), Hardware(seed=seed, noise_sigma=0.0)
    workload = tasks([80.0, 80.0], [5.0, 5.0], [0, 1], names=("k0", "k1"), intensity=0.9)
    times = true_execution_time(workload, cluster, hardware, np.random.default_rng(0))
    achieved = times[:, 0] - costs.transfer_time(workload, cluster)[:, 0]
    eff = category_efficiency(("k0", "k1"), seed)[:, GPU]
    assert achieved[0] / achieved[1] == pytest.approx(eff[1] / eff[0], rel=1e-12)
    assert achieved[0] == pytest.approx(costs.compute_time(workload, cluster)[0, 0] / eff[0])


# Noise


def test_the_same_noise_seed_gives_bit_identical_times_and_another_seed_other_times():
    workload, cluster, hardware = synthetic(), Cluster.homogeneous_kinds(4, 2), Hardware()
    first = true_execution_time(workload, cluster, hardware, np.random.default_rng(9))
    again = true_execution_time(workload, cluster, hardware, np.random.default_rng(9))
    other = true_execution_time(workload, cluster, hardware, np.random.default_rng(10))
    np.testing.assert_array_equal(first, again)
    assert np.mean(first != other) > 0.99


def test_a_scenario_built_twice_from_one_seed_has_bit_identical_truth():
    workload, cluster, hardware = synthetic(), Cluster.homogeneous_kinds(4, 2), Hardware()
    first = Scenario.build(workload, cluster, hardware, seed=5)
    again = Scenario.build(workload, cluster, hardware, seed=5)
    np.testing.assert_array_equal(first.truth.exec_time, again.truth.exec_time)
    assert not np.array_equal(
        first.truth.exec_time, Scenario.build(workload, cluster, hardware, 6).truth.exec_time
    )


def test_without_noise_the_truth_is_the_systematic_time():
    workload, cluster = synthetic(), Cluster.homogeneous_kinds(4, 2)
    hardware = Hardware(seed=3, noise_sigma=0.0)
    np.testing.assert_array_equal(
        true_execution_time(workload, cluster, hardware, np.random.default_rng(1)),
        systematic_time(workload, cluster, hardware),
    )


def test_noise_factors_have_mean_one_and_the_given_log_spread():
    sigma = 0.3
    workload = tasks(np.ones(40_000), np.ones(40_000))
    factors = noise(workload, Cluster.homogeneous_kinds(1, 1), sigma, np.random.default_rng(0))
    for column in factors.T:
        assert column.mean() == pytest.approx(1.0, abs=0.01)  # standard error 0.0015
        assert np.log(column).std() == pytest.approx(sigma, rel=0.03)


def test_identical_devices_share_each_tasks_noise_and_other_models_do_not():
    fast_gpu = replace(DEFAULT_GPU, speed=3000.0)
    cluster = Cluster.of(
        [(DeviceKind.CPU, DEFAULT_CPU)] * 3
        + [(DeviceKind.GPU, DEFAULT_GPU)] * 2
        + [(DeviceKind.GPU, fast_gpu)]
    )
    factors = noise(synthetic(), cluster, 0.2, np.random.default_rng(0))
    np.testing.assert_array_equal(factors[:, 0], factors[:, 1])
    np.testing.assert_array_equal(factors[:, 0], factors[:, 2])
    np.testing.assert_array_equal(factors[:, 3], factors[:, 4])
    for a, b in ((0, 3), (0, 5), (3, 5)):
        assert np.all(factors[:, a] != factors[:, b])


def test_explicit_cost_tables_are_the_truth_exactly():
    problem = topcuoglu_problem()
    hardware = Hardware(seed=1, noise_sigma=0.5)
    scenario = Scenario.build(problem.workload, problem.cluster, hardware, seed=3)
    np.testing.assert_array_equal(scenario.truth.exec_time, problem.workload.exec_cost)
    np.testing.assert_array_equal(scenario.estimate.exec_time, problem.workload.exec_cost)
