from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from app.runspec import RunSpec, build_scenario
from app.sim.cluster import DEFAULT_GPU, Cluster
from app.sim.costs import execution_time
from app.sim.experiment import run_experiment
from app.sim.generators import SyntheticParams, synthetic_workload
from app.sim.load import at_load, service_capacity
from app.sim.measured import measured_cluster, true_execution_time
from app.sim.workload import Workload
from tests.unit.sim.conftest import V100, V100_MIX


def arriving_at_rate_one(n: int = 2000, seed: int = 0) -> Workload:
    return synthetic_workload(
        SyntheticParams(num_tasks=n, arrival_rate=1.0, mix=V100_MIX), np.random.default_rng(seed)
    )


def mean_times(workload: Workload, cluster: Cluster) -> np.ndarray:
    """The mean of the truth's distribution on the V100 profile (what the load is set on)."""
    return true_execution_time(workload, measured_cluster(cluster, V100), V100, None)


def spec(workload: dict, cpus: int = 8, gpus: int = 2, **fields) -> RunSpec:
    return RunSpec.model_validate(
        {
            "workload": {"kind": "synthetic", **workload},
            "cluster": {"cpus": cpus, "gpus": gpus},
            "policies": ["eft"],
            **fields,
        }
    )


# Offered load


def test_utilization_rises_with_the_offered_load():
    utilization = [
        run_experiment(
            build_scenario(spec({"num_tasks": 2000, "seed": 1, "load": load})), ["eft"], seed=0
        )[0].metrics.mean_utilization
        for load in (0.2, 0.5, 0.8)
    ]
    assert utilization == sorted(utilization)


def test_doubling_the_load_halves_the_arrival_times():
    light = build_scenario(spec({"num_tasks": 500, "seed": 3, "load": 0.4})).truth.workload
    heavy = build_scenario(spec({"num_tasks": 500, "seed": 3, "load": 0.8})).truth.workload
    np.testing.assert_allclose(heavy.arrival, light.arrival / 2.0, rtol=1e-14)


def test_at_load_scales_arrivals_to_load_times_capacity():
    workload, cluster = arriving_at_rate_one(), Cluster.homogeneous_kinds(4, 1)
    times = mean_times(workload, cluster)
    capacity = service_capacity(workload, cluster, times)
    scaled = at_load(workload, cluster, 0.5, times)
    np.testing.assert_allclose(scaled.arrival, workload.arrival / (0.5 * capacity), rtol=1e-14)
    np.testing.assert_array_equal(scaled.size, workload.size)


# Service capacity


def test_the_capacity_of_cores_alone_is_their_number_over_the_mean_task_time():
    workload, cluster = arriving_at_rate_one(), Cluster.homogeneous_kinds(6, 0)
    times = mean_times(workload, cluster)
    assert service_capacity(workload, cluster, times) == pytest.approx(
        6 / times[:, 0].mean(), rel=1e-12
    )


def test_the_load_is_set_on_the_mean_times_not_on_the_draws():
    # Another run seed draws other kernel times for the same tasks, but the same arrivals.
    first = build_scenario(spec({"num_tasks": 500, "seed": 3}, seed=1)).truth
    other = build_scenario(spec({"num_tasks": 500, "seed": 3}, seed=2)).truth
    np.testing.assert_array_equal(first.workload.arrival, other.workload.arrival)
    assert not np.array_equal(first.exec_time, other.exec_time)


def test_both_kinds_together_serve_at_least_as_many_tasks_as_either_alone():
    workload = arriving_at_rate_one(seed=1)
    capacity = {
        kinds: service_capacity(workload, cluster, mean_times(workload, cluster))
        for kinds, cluster in {
            "both": Cluster.homogeneous_kinds(8, 2),
            "cores": Cluster.homogeneous_kinds(8, 0),
            "gpus": Cluster.homogeneous_kinds(0, 2),
        }.items()
    }
    assert capacity["both"] >= max(capacity["cores"], capacity["gpus"])


def nominal_capacity(workload: Workload, cluster: Cluster) -> float:
    return service_capacity(workload, cluster, execution_time(workload, cluster))


def test_capacities_add_up_when_every_task_has_the_same_cpu_to_gpu_ratio():
    # No data to move and one intensity: on the cost model a GPU takes a fixed multiple of a
    # core's time for every task, so the fluid optimum just pools the two kinds' rates.
    n = 300
    rng = np.random.default_rng(0)
    workload = Workload(
        size=rng.uniform(1.0, 100.0, n),
        intensity=np.full(n, 0.8),
        memory=np.zeros(n),
        arrival=np.arange(n, dtype=float),
    )
    gpu = replace(DEFAULT_GPU, latency=0.0)
    both = nominal_capacity(workload, Cluster.homogeneous_kinds(8, 2, gpu=gpu))
    cores = nominal_capacity(workload, Cluster.homogeneous_kinds(8, 0, gpu=gpu))
    gpus = nominal_capacity(workload, Cluster.homogeneous_kinds(0, 2, gpu=gpu))
    assert both == pytest.approx(cores + gpus, rel=1e-12)


def test_dividing_the_labour_can_serve_more_than_both_kinds_apart():
    # Half the tasks suit a core (serial), half a GPU (data-parallel): together each kind takes
    # the tasks it is fast for, beyond the sum of what each serves alone.
    workload = Workload(
        size=np.full(200, 40.0),
        intensity=np.tile([0.0, 1.0], 100),
        memory=np.ones(200),
        arrival=np.arange(200, dtype=float),
    )
    both = nominal_capacity(workload, Cluster.homogeneous_kinds(1, 1))
    cores = nominal_capacity(workload, Cluster.homogeneous_kinds(1, 0))
    gpus = nominal_capacity(workload, Cluster.homogeneous_kinds(0, 1))
    assert both > cores + gpus


def test_capacity_is_at_most_every_device_running_each_task_at_its_fastest():
    workload, cluster = arriving_at_rate_one(), Cluster.homogeneous_kinds(8, 2)
    times = mean_times(workload, cluster)
    capacity = service_capacity(workload, cluster, times)
    assert capacity <= cluster.num_devices / times.min(axis=1).mean() * (1 + 1e-12)


# RunSpec


def test_a_spec_cannot_give_both_a_load_and_an_arrival_rate():
    with pytest.raises(ValidationError) as raised:
        spec({"num_tasks": 10, "load": 0.5, "arrival_rate": 20.0})
    assert "`load`" in str(raised.value) and "`arrival_rate`" in str(raised.value)


def test_an_arrival_rate_alone_is_honoured():
    n, rate = 5000, 40.0
    workload = build_scenario(
        spec({"num_tasks": n, "seed": 2, "arrival_rate": rate})
    ).truth.workload
    inter_arrival = np.diff(np.concatenate([[0.0], workload.arrival]))
    assert inter_arrival.mean() == pytest.approx(1.0 / rate, rel=0.05)  # standard error 1.4 %


def test_a_spec_without_load_or_rate_is_loaded_to_the_default():
    default = build_scenario(spec({"num_tasks": 300, "seed": 4})).truth.workload
    explicit = build_scenario(spec({"num_tasks": 300, "seed": 4, "load": 0.85})).truth.workload
    np.testing.assert_array_equal(default.arrival, explicit.arrival)
