import numpy as np

from app.ml.bootstrap import BOOTSTRAP_VERSION, bootstrap_model
from app.sim.cluster import Cluster
from app.sim.problem import Problem
from tests.unit.sim.conftest import synthetic_problem


def test_the_bootstrap_model_predicts_execution_times_closely():
    problem = synthetic_problem(3000, cpus=2, gpus=2)
    predicted = bootstrap_model().predict_times(problem)
    error = np.abs(np.log(predicted / problem.exec_time))
    assert np.median(error) < 0.15  # ~15 % typical error
    assert bootstrap_model().version == BOOTSTRAP_VERSION


def test_it_generalises_to_a_calibrated_cluster_it_never_saw():
    from dataclasses import replace

    from app.sim.cluster import DEFAULT_GPU

    faster = replace(DEFAULT_GPU, speed=6000.0, bandwidth=25_000.0)
    workload = synthetic_problem(2000).workload
    problem = Problem.build(workload, Cluster.homogeneous_kinds(2, 2, gpu=faster))
    predicted = bootstrap_model().predict_times(problem)
    # It still ranks CPU vs GPU right for most tasks.
    agree = np.argmin(predicted[:, [0, 2]], axis=1) == np.argmin(
        problem.exec_time[:, [0, 2]], axis=1
    )
    assert agree.mean() > 0.9
