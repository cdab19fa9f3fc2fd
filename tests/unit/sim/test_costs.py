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


def test_the_faster_device_depends_on_the_task():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = tasks([50.0, 50.0], [0.99, 0.1], [100.0, 100.0])
    time = costs.execution_time(w, cluster)
    assert time[0, 1] < time[0, 0]  # data-parallel task: GPU wins
    assert time[1, 0] < time[1, 1]  # mostly serial task: CPU wins


def test_fits_compares_memory_with_each_device():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = tasks([1.0, 1.0], [0.5, 0.5], [DEFAULT_GPU.memory, DEFAULT_GPU.memory + 1])
    assert costs.fits(w, cluster).tolist() == [[True, True], [True, False]]
