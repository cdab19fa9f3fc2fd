"""How fast the engine schedules, against the same model on SimPy measured in the same run.

For each workload (independent tasks at every `--sizes`, a static layered DAG and an online DAG of
`--dag-tasks`) on 8 CPU cores + 4 GPUs: every policy through `app.sim.engine.simulate` (wall time,
tasks per second, tracemalloc peak of a separate traced run), and `round_robin` and `eft` through
bench/simpy_model.py. The makespans and placements of the two must agree; the headline is our
speed as a ratio to SimPy's. Prints markdown tables to stdout, progress to stderr; exits non-zero
on a disagreement.

    .venv/bin/python bench/sim.py [--quick] [--sizes 10000,100000] [--dag-tasks 10000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy_model  # a sibling: bench/ is on sys.path when this file runs as a script

from app.ml.bootstrap import bootstrap_model
from app.sim.cluster import Cluster
from app.sim.engine import simulate
from app.sim.experiment import policy_rng
from app.sim.generators import LayeredDagParams, SyntheticParams, layered_dag, synthetic_workload
from app.sim.policies import POLICY_NAMES, PolicyContext, make_policy
from app.sim.problem import Problem

SIZES = (10_000, 100_000, 1_000_000)
DAG_TASKS = 10_000
#: The slowest policy (its model predicts every task's time first, ~80k tasks/s): `--quick`
#: runs it, and SimPy, only up to QUICK_MAX_TASKS tasks.
SLOW_POLICIES = ("learned",)
QUICK_MAX_TASKS = 100_000
#: Makespans of the engine and SimPy must agree to this relative difference.
AGREEMENT = 1e-9
#: Repeat a timed run until this many seconds are spent (at most MAX_REPEATS); keep the best.
MIN_TIMED_SECONDS = 2.0
MAX_REPEATS = 5
#: Tasks per workload of the untimed warm-up (JIT compilation and other one-off costs).
WARM_UP_TASKS = 200


@dataclass(frozen=True)
class Case:
    name: str
    problem: Problem


@dataclass(frozen=True)
class EngineResult:
    case: Case
    policy: str
    seconds: float
    peak_mb: float
    makespan: float
    device: np.ndarray


@dataclass(frozen=True)
class PeerResult:
    ours: EngineResult
    seconds: float
    makespan: float
    same_placements: int

    @property
    def speed_ratio(self) -> float:
        return self.seconds / self.ours.seconds

    @property
    def makespan_difference(self) -> float:
        return abs(self.makespan - self.ours.makespan) / self.ours.makespan

    @property
    def agrees(self) -> bool:
        same_everywhere = self.same_placements == self.ours.case.problem.num_tasks
        return self.makespan_difference <= AGREEMENT and same_everywhere


def build_cases(sizes: list[int], dag_tasks: int, seed: int) -> list[Case]:
    cluster = Cluster.homogeneous_kinds(8, 4)
    workloads = [
        (f"independent {_count(n)}", synthetic_workload(SyntheticParams(num_tasks=n), _rng(seed)))
        for n in sizes
    ]
    workloads += [
        (
            f"layered DAG {_count(dag_tasks)}",
            layered_dag(LayeredDagParams(num_tasks=dag_tasks), _rng(seed)),
        ),
        (
            f"online DAG {_count(dag_tasks)}",
            synthetic_workload(
                SyntheticParams(num_tasks=dag_tasks, dependency_probability=0.5), _rng(seed)
            ),
        ),
    ]
    return [Case(name, Problem.build(workload, cluster)) for name, workload in workloads]


def warm_up(context: PolicyContext, seed: int) -> None:
    """Run every policy, ours and SimPy's, once on small workloads of each kind, so one-off
    costs (JIT compilation, imports, caches) stay out of both the timings and the traced peaks."""
    for case in build_cases([WARM_UP_TASKS], WARM_UP_TASKS, seed):
        for policy in POLICY_NAMES:
            simulate(case.problem, make_policy(policy, context), policy_rng(seed, policy))
        for policy in simpy_model.PLACERS:
            simpy_model.simulate(case.problem, policy)


def run_engine(case: Case, policy: str, context: PolicyContext, seed: int) -> EngineResult:
    """Time `simulate` alone (the Problem is built already); memory from a separate traced run,
    since tracemalloc slows Python down several times."""

    def run() -> Any:
        return simulate(case.problem, make_policy(policy, context), policy_rng(seed, policy))

    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    seconds, schedule = best_time(run)
    return EngineResult(
        case, policy, seconds, peak / 1e6, float(schedule.end.max()), schedule.device
    )


def run_peer(ours: EngineResult) -> PeerResult:
    seconds, execution = best_time(lambda: simpy_model.simulate(ours.case.problem, ours.policy))
    same = int(np.count_nonzero(execution.device == ours.device))
    return PeerResult(ours, seconds, execution.makespan, same)


def best_time(run: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of repeated runs (seconds) and the last run's result."""
    times: list[float] = []
    while not times or (sum(times) < MIN_TIMED_SECONDS and len(times) < MAX_REPEATS):
        gc.collect()
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return min(times), result


def problem_mb(problem: Problem) -> float:
    """The Problem's own arrays: cost tables, task attributes and the DAG in both directions."""
    workload = problem.workload
    arrays = [problem.exec_time, problem.feasible, *workload.children]
    arrays += [getattr(workload, name) for name in ("size", "intensity", "memory", "arrival")]
    arrays += [workload.parent_ptr, workload.parent_idx, workload.edge_data]
    return sum(array.nbytes for array in arrays) / 1e6


def peer_table(results: list[PeerResult]) -> str:
    rows = [
        [
            r.ours.case.name,
            r.ours.policy,
            f"**{r.speed_ratio:.2f}x**",
            f"{r.ours.seconds:.3f}",
            f"{r.seconds:.3f}",
            _rate(r.ours.case, r.ours.seconds),
            _rate(r.ours.case, r.seconds),
            f"{r.ours.makespan:.6f}",
            f"{r.makespan_difference:.1e}",
            f"{r.same_placements}/{r.ours.case.problem.num_tasks}",
            "yes" if r.agrees else "**NO**",
        ]
        for r in results
    ]
    header = [
        "workload",
        "policy",
        "speed ours/SimPy",
        "ours s",
        "SimPy s",
        "ours tasks/s",
        "SimPy tasks/s",
        "makespan s",
        "makespan rel. diff",
        "same device",
        "agree",
    ]
    return _markdown(header, rows)


def engine_table(results: list[EngineResult]) -> str:
    rows = [
        [
            r.case.name,
            r.policy,
            f"{r.seconds:.3f}",
            _rate(r.case, r.seconds),
            f"{r.peak_mb:.1f}",
            f"{r.peak_mb / r.case.problem.num_tasks * 1000:.3f}",
            f"{r.makespan:.2f}",
        ]
        for r in results
    ]
    header = ["workload", "policy", "s", "tasks/s", "peak MB", "MB / 1k tasks", "makespan s"]
    return _markdown(header, rows)


def problem_table(cases: list[Case]) -> str:
    rows = [
        [
            case.name,
            str(case.problem.num_tasks),
            str(case.problem.workload.num_edges),
            f"{problem_mb(case.problem):.1f}",
            f"{problem_mb(case.problem) / case.problem.num_tasks * 1000:.3f}",
        ]
        for case in cases
    ]
    return _markdown(["workload", "tasks", "edges", "Problem MB", "MB / 1k tasks"], rows)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    began = time.perf_counter()
    context = PolicyContext(performance_model=bootstrap_model())
    warm_up(context, args.seed)
    cases = build_cases(args.sizes, args.dag_tasks, args.seed)
    ours: list[EngineResult] = []
    peers: list[PeerResult] = []
    for case in cases:
        big = case.problem.num_tasks > QUICK_MAX_TASKS
        for policy in POLICY_NAMES:
            if args.quick and big and policy in SLOW_POLICIES:
                continue
            _progress(f"{case.name}: {policy}")
            ours.append(run_engine(case, policy, context, args.seed))
            if policy in simpy_model.PLACERS and not (args.quick and big):
                _progress(f"{case.name}: {policy} on SimPy")
                peers.append(run_peer(ours[-1]))
    print("## Our engine against SimPy (same model, same run)\n")
    print(peer_table(peers))
    print("\n## Every policy through our engine\n")
    print(engine_table(ours))
    print("\n## The problems (built before timing; not part of peak MB)\n")
    print(problem_table(cases))
    print(f"\nBench wall time: {time.perf_counter() - began:.0f} s")
    failures = [r for r in peers if not r.agrees]
    for r in failures:
        print(
            f"MISMATCH {r.ours.case.name} {r.ours.policy}: engine makespan {r.ours.makespan!r} s, "
            f"SimPy {r.makespan!r} s, {r.same_placements} tasks on the same device",
            file=sys.stderr,
        )
    return 1 if failures else 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"skip {', '.join(SLOW_POLICIES)} and SimPy above {QUICK_MAX_TASKS} tasks",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=list(SIZES),
        help="independent-task workload sizes, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--dag-tasks", type=int, default=DAG_TASKS, help="tasks per DAG")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _count(n: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _rate(case: Case, seconds: float) -> str:
    return f"{case.problem.num_tasks / seconds:,.0f}"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
