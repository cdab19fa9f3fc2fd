"""Problems shared by the core's tests."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from app.ml.bootstrap import bootstrap_model
from app.profilespec import load_shipped_profile
from app.sim.cluster import Cluster
from app.sim.generators import LayeredDagParams, SyntheticParams, layered_dag, synthetic_workload
from app.sim.kernelmix import KernelMix
from app.sim.policies import PolicyContext
from app.sim.problem import Problem
from app.sim.schedule import ARRAYS, Schedule
from app.sim.workload import Workload

# Topcuoglu, Hariri & Wu (IEEE TPDS 2002), Fig. 2: 10 tasks on 3 processors.
TOPCUOGLU_COSTS = [
    [14, 16, 9], [13, 19, 18], [11, 13, 19], [13, 8, 17], [12, 13, 10],
    [13, 16, 9], [7, 15, 11], [5, 11, 14], [18, 12, 20], [21, 7, 16],
]  # fmt: skip
TOPCUOGLU_EDGES = [
    (1, 2, 18), (1, 3, 12), (1, 4, 9), (1, 5, 11), (1, 6, 14), (2, 8, 19), (2, 9, 16),
    (3, 7, 23), (4, 8, 27), (4, 9, 23), (5, 9, 13), (6, 8, 15), (7, 10, 17), (8, 10, 11),
    (9, 10, 13),
]  # fmt: skip


# Arabnejad & Barbosa (IEEE TPDS 2014), PEFT's example: 10 tasks on 3 processors (PEFT 122, HEFT
# 133). Transcribed from two public implementations that agree with each other and reproduce the
# paper's OCT table and makespans (mackncheesiest/peft test/peftgraph_*.csv; curious95/
# Predict-Earliest-Finish-Time-PEFT task_det.txt, proc_det.txt): the paper itself was not at hand.
ARABNEJAD_COSTS = [
    [22, 21, 36], [22, 18, 18], [32, 27, 43], [7, 10, 4], [29, 27, 35],
    [26, 17, 24], [14, 25, 30], [29, 23, 36], [15, 21, 8], [13, 16, 33],
]  # fmt: skip
ARABNEJAD_EDGES = [
    (1, 2, 17), (1, 3, 31), (1, 4, 29), (1, 5, 13), (1, 6, 7), (2, 8, 3), (2, 9, 30),
    (3, 7, 16), (4, 8, 11), (4, 9, 7), (5, 9, 57), (6, 8, 5), (7, 10, 9), (8, 10, 42),
    (9, 10, 7),
]  # fmt: skip


def explicit_problem(costs: list[list[int]], edges: list[tuple[int, int, int]]) -> Problem:
    """The literature's form: a cost per (task, processor), a cost per edge between processors;
    tasks and edges numbered from 1 as the papers do."""
    n = len(costs)
    workload = Workload.from_edges(
        size=np.ones(n),
        intensity=np.zeros(n),
        memory=np.zeros(n),
        arrival=np.zeros(n),
        edges=[(a - 1, b - 1) for a, b, _ in edges],
        exec_cost=np.array(costs, float),
        edge_cost=np.array([c for *_, c in edges], float),
    )
    return Problem.build(workload, Cluster.processors(len(costs[0])))


def topcuoglu_problem() -> Problem:
    return explicit_problem(TOPCUOGLU_COSTS, TOPCUOGLU_EDGES)


def arabnejad_problem() -> Problem:
    return explicit_problem(ARABNEJAD_COSTS, ARABNEJAD_EDGES)


def synthetic_problem(n: int = 2000, seed: int = 5, cpus: int = 4, gpus: int = 2, **kw) -> Problem:
    workload = synthetic_workload(SyntheticParams(num_tasks=n, **kw), np.random.default_rng(seed))
    return Problem.build(workload, Cluster.homogeneous_kinds(cpus, gpus))


def layered_problem(n: int = 300, seed: int = 3, cpus: int = 4, gpus: int = 2, **kw) -> Problem:
    workload = layered_dag(LayeredDagParams(num_tasks=n, **kw), np.random.default_rng(seed))
    return Problem.build(workload, Cluster.homogeneous_kinds(cpus, gpus))


@pytest.fixture(scope="session")
def context() -> PolicyContext:
    return PolicyContext(performance_model=bootstrap_model())


#: The shipped V100 + Skylake profile and its mix on a cluster of cores and GPUs.
V100 = load_shipped_profile("v100-skylake-mcsweeney2020").to_profile()
V100_MIX = KernelMix.of(V100, ["cpu", "gpu"])


def sha256_digest(schedule: Schedule) -> str:
    """The digest as runs recorded before XXH3 stored it: sha256 over the same bytes."""
    sha = hashlib.sha256()
    for name in ARRAYS:
        array = getattr(schedule, name)
        sha.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()
