import numpy as np
import pytest

from app.sim import costs
from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU, Cluster
from app.sim.workload import Workload


def tasks(size, intensity, memory):
    n = len(size)
    return Workload(
        size=np.array(size, float),
        intensity=np.array(intensity, float),
        memory=np.array(memory, float),
        arrival=np.zeros(n),
    )


def test_cpu_time_is_size_over_speed_whatever_the_intensity():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=0)
    w = tasks([40.0, 40.0], [0.0, 1.0], [100.0, 100.0])
    assert costs.execution_time(w, cluster)[:, 0] == pytest.approx([40.0 / DEFAULT_CPU.speed] * 2)


def test_gpu_time_follows_the_formula_including_the_transfer():
    cluster = Cluster.homogeneous_kinds(cpus=0, gpus=1)
    w = tasks([100.0], [0.9], [600.0])
    expected = (
        100.0 * (0.9 / DEFAULT_GPU.speed + 0.1 / DEFAULT_GPU.scalar_speed)
        + DEFAULT_GPU.latency
        + 600.0 / DEFAULT_GPU.bandwidth
    )
    assert costs.execution_time(w, cluster)[0, 0] == pytest.approx(expected)


def test_the_transfer_times_of_chosen_executions_are_the_tables_entries_bit_for_bit():
    rng = np.random.default_rng(3)
    cluster = Cluster.homogeneous_kinds(cpus=3, gpus=2)
    n = 500
    w = tasks(rng.uniform(1, 100, n), rng.uniform(0, 1, n), rng.lognormal(5, 2, n))
    chosen_tasks, chosen_devices = rng.integers(0, n, 2000), rng.integers(0, 5, 2000)
    table = costs.transfer_time(w, cluster)
    chosen = costs.transfer_times_of(w, cluster, chosen_tasks, chosen_devices)
    assert chosen.tobytes() == table[chosen_tasks, chosen_devices].tobytes()
    assert (chosen[chosen_devices < 3] == 0).all() and (chosen[chosen_devices >= 3] > 0).all()


def test_the_faster_device_depends_on_the_task():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    time = costs.execution_time(tasks([50.0, 50.0], [0.99, 0.1], [100.0, 100.0]), cluster)
    assert time[0, 1] < time[0, 0]  # data-parallel task: GPU wins
    assert time[1, 0] < time[1, 1]  # mostly serial task: CPU wins


def test_the_best_split_is_an_interior_trade_off_that_beats_both_devices():
    cpu_time, gpu_time, latency = np.array([1.0]), np.array([0.8]), 0.01
    shares = np.linspace(0, 1, 1001)
    curve = costs.split_time(cpu_time, gpu_time, latency, shares)
    best = costs.best_fraction(cpu_time, gpu_time, latency)
    assert 0 < best[0] < 1
    assert shares[np.argmin(curve)] == pytest.approx(best[0], abs=1e-3)
    at_best = costs.split_time(cpu_time, gpu_time, latency, best)[0]
    assert at_best == pytest.approx(curve.min(), abs=1e-3)
    assert at_best < min(cpu_time[0], gpu_time[0]) * 0.6
    # The ends are the whole placements.
    assert costs.split_time(cpu_time, gpu_time, latency, 0.0)[0] == 1.0
    assert costs.split_time(cpu_time, gpu_time, latency, 1.0)[0] == pytest.approx(0.8)


def test_a_much_faster_gpu_takes_almost_all_of_the_task():
    best = costs.best_fraction(np.array([10.0]), np.array([0.1]), 0.0)
    assert best[0] > 0.98


def test_memory_bounds_the_share():
    low, high = costs.fraction_bounds(np.array([30_000.0, 100.0]), 20_000.0, 16_000.0)
    assert low[0] == pytest.approx(1 / 3) and high[0] == pytest.approx(16 / 30)
    assert (low[1], high[1]) == (0.0, 1.0)
    clipped = costs.best_fraction(np.array([10.0]), np.array([0.1]), 0.0, low[:1], high[:1])
    assert clipped[0] == pytest.approx(16 / 30)


def test_edge_transfers_cost_nothing_between_cores_and_go_through_the_host_otherwise():
    cluster = Cluster.homogeneous_kinds(cpus=2, gpus=2)
    data, gpu_leg = 600.0, DEFAULT_GPU.latency + 600.0 / DEFAULT_GPU.bandwidth
    from_cpu = costs.edge_transfer(cluster, data, None, source=0)
    assert from_cpu.tolist() == pytest.approx([0, 0, gpu_leg, gpu_leg])
    from_gpu = costs.edge_transfer(cluster, data, None, source=2)
    assert from_gpu.tolist() == pytest.approx([gpu_leg, gpu_leg, 0, 2 * gpu_leg])
    explicit = costs.edge_transfer(cluster, data, 7.0, source=1)
    assert explicit.tolist() == [7.0, 0.0, 7.0, 7.0]


def test_explicit_costs_replace_the_model_per_device_or_per_kind():
    w = Workload(
        size=np.ones(2),
        intensity=np.ones(2),
        memory=np.zeros(2),
        arrival=np.zeros(2),
        exec_cost=np.array([[3.0, 1.0], [2.0, 5.0]]),
    )
    per_kind = costs.execution_time(w, Cluster.homogeneous_kinds(2, 1))
    assert per_kind.tolist() == [[3.0, 3.0, 1.0], [2.0, 2.0, 5.0]]
    assert costs.execution_time(w, Cluster.processors(2)).tolist() == [[3.0, 1.0], [2.0, 5.0]]
    with pytest.raises(ValueError, match="columns"):
        costs.execution_time(w, Cluster.processors(3))
