import numpy as np
import pytest

from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU, Cluster
from app.sim.metrics import summarize
from app.sim.problem import Problem
from app.sim.schedule import Schedule
from app.sim.workload import Workload


def test_metrics_of_a_hand_made_schedule():
    cluster = Cluster.homogeneous_kinds(cpus=1, gpus=1)
    w = Workload(
        size=np.ones(3), intensity=np.ones(3), memory=np.ones(3), arrival=np.array([0.0, 1.0, 2.0])
    )
    schedule = Schedule(
        device=np.array([0, 1, 0]),
        start=np.array([0.0, 1.0, 2.0]),
        end=np.array([2.0, 2.0, 4.0]),
        gpu_fraction=np.array([0.0, 1.0, 0.0]),
    )
    m = summarize(Problem.build(w, cluster), schedule)
    assert m.makespan == 4.0
    assert m.mean_flow_time == pytest.approx((2 + 1 + 2) / 3)
    assert m.utilization == {"cpu0": 1.0, "gpu0": 0.25}
    assert m.mean_utilization == pytest.approx(0.625)
    cpu_energy = 4 * DEFAULT_CPU.power_busy
    gpu_energy = 1 * DEFAULT_GPU.power_busy + 3 * DEFAULT_GPU.power_idle
    assert m.energy == pytest.approx(cpu_energy + gpu_energy)
    assert m.cost == pytest.approx((DEFAULT_CPU.price + DEFAULT_GPU.price) * 4 / 3600)
