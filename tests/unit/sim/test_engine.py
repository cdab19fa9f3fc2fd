import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.sim.cluster import Cluster
from app.sim.decision import Decision, Rule, SplitTables
from app.sim.engine import PolicyError, simulate
from app.sim.invariants import violations
from app.sim.policies import POLICY_NAMES, PolicyContext, make_policy
from app.sim.policies.base import Policy
from app.sim.policies.splits import split_tables
from app.sim.problem import Infeasible, Problem
from app.sim.workload import Workload
from tests.unit.sim.conftest import layered_problem, synthetic_problem, topcuoglu_problem


class Fixed(Policy):
    """Places task i on `choices[i]`: a device, or (gpu, cpu, share) for a split."""

    name = "fixed"
    summary = "test policy"

    def __init__(self, choices, insertion=False, priority=None):
        self.choices = choices
        self.insertion = insertion
        self.priority = priority

    def decide(self, problem, rng):
        split = [c if isinstance(c, tuple) else (c, -1, 0.0) for c in self.choices]
        fixed = tuple(np.array(column) for column in zip(*split, strict=True))
        return Decision(Rule.FIXED, insertion=self.insertion, priority=self.priority, fixed=fixed)


def cpu_tasks(sizes, arrivals=None, edges=(), edge_data=None, memory=None):
    n = len(sizes)
    return Workload.from_edges(
        size=np.array(sizes, float),
        intensity=np.zeros(n),
        memory=np.ones(n) if memory is None else np.array(memory, float),
        arrival=np.zeros(n) if arrivals is None else np.array(arrivals, float),
        edges=list(edges),
        edge_data=edge_data,
    )


def run(workload, cluster, policy):
    problem = Problem.build(workload, cluster)
    schedule = simulate(problem, policy, np.random.default_rng(0))
    assert violations(problem, schedule) == []
    return schedule


def test_a_device_runs_its_queue_first_come_first_served():
    w = cpu_tasks([40.0, 40.0, 40.0], arrivals=[0.0, 0.5, 5.0])  # 1 s each on a default core
    s = run(w, Cluster.homogeneous_kinds(1, 0), Fixed([0, 0, 0]))
    assert s.start.tolist() == pytest.approx([0.0, 1.0, 5.0])
    assert s.end.tolist() == pytest.approx([1.0, 2.0, 6.0])


def test_a_child_waits_for_its_parent_and_for_the_data_to_reach_a_gpu():
    cluster = Cluster.homogeneous_kinds(1, 1)
    w = cpu_tasks([40.0, 40.0], edges=[(0, 1)], edge_data=np.array([1200.0]))
    on_cpu = run(w, cluster, Fixed([0, 0]))
    assert on_cpu.start[1] == pytest.approx(1.0)  # same device: no transfer
    to_gpu = run(w, cluster, Fixed([0, 1]))
    transfer = cluster.latency[1] + 1200.0 / cluster.bandwidth[1]
    assert to_gpu.start[1] == pytest.approx(1.0 + transfer)


def test_insertion_fills_an_idle_gap_and_append_does_not():
    # Task 0 (1 s) on core 0; task 1 waits 5 s for data from task 0 on core... 1 via explicit cost;
    # task 2 (1 s) is free at 0 and can fill core 1's idle gap before task 1.
    w = Workload.from_edges(
        np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3), [(0, 1)],
        exec_cost=np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), edge_cost=np.array([5.0]),
    )  # fmt: skip
    cluster = Cluster.processors(2)
    appended = run(w, cluster, Fixed([0, 1, 1]))
    inserted = run(w, cluster, Fixed([0, 1, 1], insertion=True))
    assert appended.start[1] == 6.0 and appended.start[2] == 7.0
    assert inserted.start[1] == 6.0 and inserted.start[2] == 0.0


def test_a_split_holds_both_devices_for_the_split_time():
    cluster = Cluster.homogeneous_kinds(1, 1)
    w = Workload(
        size=np.array([100.0]),
        intensity=np.array([0.95]),
        memory=np.array([100.0]),
        arrival=np.zeros(1),
    )
    s = run(w, cluster, Fixed([(1, 0, 0.6)]))
    assert (s.device[0], s.partner[0], s.gpu_fraction[0]) == (1, 0, 0.6)
    assert s.busy_intervals(0)[0].tolist() == s.busy_intervals(1)[0].tolist() == [0.0]


def test_every_policy_respects_memory_a_big_task_runs_on_a_cpu(context):
    cluster = Cluster.homogeneous_kinds(1, 3)
    big = cluster.memory[1] * 1.5  # fits no GPU, and too much for a split's CPU share too
    w = Workload(
        size=np.full(4, 500.0),
        intensity=np.full(4, 1.0),  # GPUs would be far faster...
        memory=np.array([10.0, big, 10.0, big]),
        arrival=np.zeros(4),
    )
    problem = Problem.build(w, cluster)
    from app.sim.policies import POLICY_NAMES

    for name in POLICY_NAMES:
        s = simulate(problem, make_policy(name, context), np.random.default_rng(0))
        assert violations(problem, s) == [], name
        for task in (1, 3):  # ...but these do not fit on them whole
            assert s.device[task] == 0 or s.gpu_fraction[task] * big <= cluster.memory[1], name


def test_a_task_that_fits_nowhere_is_rejected_before_simulation():
    w = Workload(size=np.ones(1), intensity=np.ones(1), memory=np.array([1e9]), arrival=np.zeros(1))
    with pytest.raises(Infeasible, match="fit on no device"):
        Problem.build(w, Cluster.homogeneous_kinds(1, 1))


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (1, "does not fit"),
        (7, "no such device"),
        ((0, 1, 0.5), "needs a GPU"),
    ],
)
def test_a_policy_that_breaks_the_rules_is_stopped(choice, message):
    cluster = Cluster.homogeneous_kinds(1, 1)
    w = Workload(
        size=np.ones(1),
        intensity=np.ones(1),
        memory=np.array([cluster.memory[1] + 1]),
        arrival=np.zeros(1),
    )
    with pytest.raises(PolicyError, match=message):
        simulate(Problem.build(w, cluster), Fixed([choice]), np.random.default_rng(0))


class Declares(Policy):
    """Returns the decision it was given, whatever the problem."""

    name = "declares"
    summary = "test policy"

    def __init__(self, decision):
        self.decision = decision

    def decide(self, problem, rng):
        return self.decision


def _bad_splits(n, cpu_group=2):
    """Split tables for a 1 CPU + 1 GPU cluster whose pair names a third group (by default)."""
    return SplitTables(
        group_ptr=np.array([0, 1, 2]),
        group_devices=np.array([1, 0]),
        pair_gpu_group=np.array([0]),
        pair_cpu_group=np.array([cpu_group]),
        share=np.full((1, n), 0.5),
        time=np.ones((1, n)),
    )


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (Decision(Rule.UNIFORM), "UNIFORM needs its arrays"),
        (Decision(Rule.FIXED), "FIXED needs its arrays"),
        (Decision(Rule.BANDIT), "BANDIT needs its arrays"),
        (Decision(Rule.UNIFORM, draws=np.zeros(2)), r"draws has shape \(2,\), expected \(3,\)"),
        (Decision(Rule.EFT, priority=np.zeros(4)), "priority has shape"),
        (Decision(Rule.EFT, estimate=np.ones((3, 3))), r"estimate has shape \(3, 3\)"),
        (Decision(Rule.EFT, allowed=np.ones(3, bool)), "allowed has shape"),
        (
            Decision(Rule.FIXED, fixed=(np.zeros(3, int), np.full(2, -1), np.zeros(3))),
            r"fixed\[1\] has shape",
        ),
        (Decision(Rule.EFT, splits=_bad_splits(3)), "a group that does not exist"),
        (Decision(Rule.EFT, bias=np.zeros((3, 1))), r"bias has shape \(3, 1\)"),
        (Decision(Rule.EFT, bias=np.full((3, 2), np.nan)), "bias has NaN"),
        (Decision(Rule.EFT, bias=np.full((3, 2), np.inf)), "rules out every device"),
        (
            Decision(Rule.EFT, bias=np.zeros((3, 2)), splits=_bad_splits(3, cpu_group=1)),
            "not splits",
        ),
    ],
)
def test_a_decision_whose_arrays_do_not_match_the_problem_is_refused_before_the_kernel(
    decision, message
):
    # The compiled loop does not check bounds: a short or missing array would be read past its
    # end, so the engine refuses it first.
    problem = Problem.build(cpu_tasks([40.0] * 3), Cluster.homogeneous_kinds(1, 1))
    with pytest.raises(PolicyError, match=message):
        simulate(problem, Declares(decision), np.random.default_rng(0))


def test_eft_weighs_splits_exactly_when_the_decision_has_split_tables():
    problem = synthetic_problem(200)
    tables = split_tables(problem, problem.exec_time)
    rng = np.random.default_rng(0)
    with_tables = simulate(problem, Declares(Decision(Rule.EFT, splits=tables)), rng)
    without = simulate(problem, Declares(Decision(Rule.EFT)), rng)
    assert (with_tables.partner >= 0).any()
    assert (without.partner == -1).all()


def test_a_bias_chooses_the_device_but_the_recorded_times_are_the_true_ones():
    # Three 1 s tasks on two cores: plain EFT spreads them; a bias of 10 s on core 1 keeps all
    # three on core 0, queued back to back; +inf on core 0 for task 2 sends it to core 1.
    problem = Problem.build(cpu_tasks([40.0] * 3), Cluster.homogeneous_kinds(2, 0))
    rng = np.random.default_rng(0)
    plain = simulate(problem, Declares(Decision(Rule.EFT)), rng)
    assert plain.device.tolist() == [0, 1, 0]
    bias = np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0]])
    biased = simulate(problem, Declares(Decision(Rule.EFT, bias=bias)), rng)
    assert biased.device.tolist() == [0, 0, 0]
    assert biased.end.tolist() == pytest.approx([1.0, 2.0, 3.0])
    bias[2] = [np.inf, 0.0]
    pinned = simulate(problem, Declares(Decision(Rule.EFT, bias=bias)), rng)
    assert pinned.device.tolist() == [0, 0, 1]
    assert pinned.end.tolist() == pytest.approx([1.0, 2.0, 1.0])


def test_tasks_are_decided_in_arrival_then_priority_order():
    # One core, 1 s tasks queued in decision order: the start times reveal the order.
    policy = Fixed([0] * 4, priority=np.array([0.0, 5.0, 1.0, 9.0]))
    s = run(cpu_tasks([40.0] * 4, arrivals=[0, 0, 0, 1]), Cluster.homogeneous_kinds(1, 0), policy)
    assert np.argsort(s.start).tolist() == [1, 2, 0, 3]


def test_progress_is_reported_up_to_completion():
    seen: list[float] = []
    simulate(
        synthetic_problem(10_000), make_policy("round_robin"), np.random.default_rng(0), seen.append
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen) and len(seen) >= 3


class ScaledModel:
    """A deterministic performance model for `learned`: the truth, GPUs believed 1.5x slower."""

    version = "scaled"

    def predict_times(self, problem, on_progress=None):
        times = problem.exec_time.copy()
        times[:, problem.cluster.gpus] *= 1.5
        return times


def schedule_digest(schedule) -> str:
    digest = hashlib.sha256()
    for column in (schedule.device, schedule.partner):
        digest.update(np.ascontiguousarray(column, dtype=np.int64).tobytes())
    for column in (schedule.gpu_fraction, schedule.start, schedule.end):
        digest.update(np.ascontiguousarray(column, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


#: Every policy's schedules on DIGEST_PROBLEMS, hashed, as the engine produced them before its
#: per-task path was made faster (December 2026): a faster engine must not move a single task.
#: The problems are drawn from seeded generators; a digest moves if the engine, a policy or the
#: generators change a bit of their output. "replay" is FIXED placing each task (and split) where
#: oracle placed it.
SCHEDULE_DIGESTS: dict[str, str] = {
    "round_robin": "7fbb6e8acac6c432",
    "random": "1150171ca682d412",
    "greedy": "7fc3f105a46b0bd9",
    "cpu_only": "d6b429334487ef9d",
    "gpu_only": "55afcdaa1f86937b",
    "eft": "04ff09bbf094d951",
    "heft": "141145ce6586c211",
    "lookahead": "a33a307127333a8a",  # as first committed with the policy
    "peft": "79cd7e0276de2ea5",
    "cpop": "4248d5817a747d58",
    "olb": "976248a379eed7d2",
    "met": "7fc3f105a46b0bd9",
    "mct": "04ff09bbf094d951",
    "minmin": "5ac4ef82d7302736",
    "maxmin": "551bffbe93a74b00",
    "sufferage": "93d06f573c424ffd",
    "learned": "4ecdb129a83e6a19",
    # Since its dot products are summed in index order, not by BLAS (kernel._dot): ec1c8afa...
    # before, on the machine that first hashed them; 7775c196... on an AVX-512 one.
    "rl": "68aa5b3a542aca14",
    "oracle": "586dff661302ae27",
    # The runtime schedulers as they were first written (kernel_runtime.py, December 2026).
    "eager": "b5a6a82ea0eed42b",
    "ws": "0852599334c4b710",
    "dm": "a9cc512f16e160db",
    "dmda": "354f8f4dffbfeea4",
    "dmdas": "4e476ca276c3bce9",
    "heteroprio": "dda7eb343055b3ae",
    "replay": "4c3a865f3a11178a",
}


def at_once(problem: Problem) -> Problem:
    workload = problem.workload
    return Problem.build(workload.evolve(arrival=np.zeros(workload.num_tasks)), problem.cluster)


def digest_problems() -> list[Problem]:
    return [
        synthetic_problem(600, seed=11, arrival_rate=400.0),  # online: queues form
        at_once(synthetic_problem(400, seed=12)),
        layered_problem(600, seed=13),  # a DAG: > 64 busy intervals per device with insertion
        topcuoglu_problem(),  # explicit edge costs
    ]


def replay_of_oracle(problem: Problem) -> Fixed:
    oracle = simulate(problem, make_policy("oracle"), np.random.default_rng(0))
    columns = (oracle.device, oracle.partner, oracle.gpu_fraction)
    return Fixed([
        (int(d), int(p), float(f)) if p >= 0 else int(d) for d, p, f in zip(*columns, strict=True)
    ])  # fmt: skip


def every_policys_digest() -> dict[str, str]:
    context = PolicyContext(performance_model=ScaledModel())
    digests = {}
    for name in [*POLICY_NAMES, "replay"]:
        parts = []
        for problem in digest_problems():
            policy = replay_of_oracle(problem) if name == "replay" else make_policy(name, context)
            schedule = simulate(problem, policy, np.random.default_rng(0))
            parts.append(schedule_digest(schedule))
        digests[name] = hashlib.sha256("".join(parts).encode()).hexdigest()[:16]
    return digests


def test_every_policy_schedules_exactly_as_before():
    assert every_policys_digest() == SCHEDULE_DIGESTS


def test_the_schedules_do_not_depend_on_the_blas_kernel_of_the_cpu():
    """Bit-identical anywhere: OpenBLAS picks a kernel for the CPU it runs on, and each sums in
    its own order. In a process made to use another one (Sandybridge: AVX, no FMA) every policy
    schedules as here; rl did not while its kernel multiplied with `@`."""
    program = (
        "import json; from tests.unit.sim.test_engine import every_policys_digest; "
        "print(json.dumps(every_policys_digest()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "OPENBLAS_CORETYPE": "Sandybridge"},
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == SCHEDULE_DIGESTS
