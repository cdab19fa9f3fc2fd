"""Every policy's schedule passes the invariant checker, on every kind of workload; and the
checker does catch broken schedules."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.sim.cluster import DEFAULT_GPU, Cluster
from app.sim.engine import simulate
from app.sim.importers import workload_from_stg, workload_from_wfcommons
from app.sim.invariants import violations
from app.sim.policies import POLICY_NAMES, make_policy
from app.sim.problem import Problem
from tests.unit.sim.conftest import layered_problem, synthetic_problem, topcuoglu_problem

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def wfcommons_problem(name: str) -> Problem:
    document = json.loads((FIXTURES / "wfcommons" / name).read_text())
    return Problem.build(workload_from_wfcommons(document), Cluster.homogeneous_kinds(4, 2))


WORKLOADS = {
    "synthetic": lambda: synthetic_problem(1500),
    "synthetic_dependencies": lambda: synthetic_problem(1500, dependency_probability=0.5),
    "layered_dag": lambda: layered_problem(300, ccr=2.0),
    "wfcommons_montage": lambda: wfcommons_problem("montage.json"),
    "wfcommons_epigenomics": lambda: wfcommons_problem("epigenomics.json"),
    "wfcommons_blast": lambda: wfcommons_problem("blast.json"),
    "wfcommons_1.4": lambda: wfcommons_problem("genome-schema-1.4.json"),
    "stg": lambda: Problem.build(
        workload_from_stg((FIXTURES / "stg" / "six_tasks_comm.stg").read_text()),
        Cluster.homogeneous_kinds(2, 1),
    ),
    "explicit": topcuoglu_problem,
}


@pytest.fixture(scope="module", params=sorted(WORKLOADS))
def problem(request):
    return WORKLOADS[request.param]()


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_policy_produces_a_valid_schedule(problem, policy, context):
    schedule = simulate(problem, make_policy(policy, context), np.random.default_rng(0))
    assert violations(problem, schedule) == []


def test_the_checker_catches_broken_schedules():
    problem = layered_problem(100)
    good = simulate(problem, make_policy("heft"), np.random.default_rng(0))
    assert violations(problem, good) == []
    child = int(np.flatnonzero(np.diff(problem.workload.parent_ptr))[0])

    def broken(**changes):
        return violations(problem, replace(good, **changes))

    early = good.start.copy()
    early[child] = 0.0
    assert any("before" in v for v in broken(start=early, end=early + good.end - good.start))
    longer = good.end.copy()
    longer[0] += 1.0
    assert any("ran" in v for v in broken(end=longer))
    stacked = good.device.copy()
    stacked[:] = good.device[0]
    assert any("two tasks at once" in v or "costs" in v for v in broken(device=stacked))
    unplaced = good.device.copy()
    unplaced[3] = -1
    assert any("never placed" in v for v in broken(device=unplaced))


def test_the_checker_catches_memory_overflow():
    small_gpu = replace(DEFAULT_GPU, memory=50.0)  # MB: most tasks do not fit
    workload = synthetic_problem(300).workload
    problem = Problem.build(workload, Cluster.homogeneous_kinds(1, 1, gpu=small_gpu))
    schedule = simulate(problem, make_policy("cpu_only"), np.random.default_rng(0))
    too_big = np.flatnonzero(~problem.feasible[:, 1])
    device = schedule.device.copy()
    device[too_big[0]] = 1
    assert any("memory" in v for v in violations(problem, replace(schedule, device=device)))
