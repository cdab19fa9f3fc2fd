"""How fast the independent-task heuristics and the runtime schedulers run in the compiled engine,
against a straightforward pure-Python implementation of the same rules measured in the same run.

The peers are `reference_schedule` of tests/unit/sim/test_independent_heuristics.py and of
tests/unit/sim/runtime_reference.py — the plain Python the tests cross-check the engine against,
one task (in batch mode, one candidate task per step; for the runtimes, one instant) at a time —
so the bench needs the repository root on the path (`make bench` sets it). On 8 CPU cores + 4
GPUs, seed 0, with the estimates exact: `--tasks` independent tasks arriving online at offered
load 0.95 (load.py), and the same tasks all at once (one static batch, mapped in windows of
BATCH_LIMIT). For each of olb, met, mct, minmin, maxmin, sufferage, eager, ws, dm, dmda, dmdas
and heteroprio (`--policies` picks some; a runtime's priorities and beliefs come from its policy,
computed outside the reference's timing): the engine's `simulate` (the best of repeated runs
after a warm-up) and the reference (one run); they must place every task on the same device,
else the bench exits non-zero. The headline is the ratio reference seconds / engine seconds. A
second table times the batch rules on `--scale` times as many tasks all at once: linear cost
means the time per task stays flat. A third times the DAG heuristic `lookahead` the same way,
against `reference_lookahead` of tests/unit/sim/policies/test_lookahead.py, on two static DAGs
of about `--tasks` tasks: a sparse layered random DAG and a tiled Cholesky factorization.

    PYTHONPATH=. .venv/bin/python bench/heuristics.py [--tasks 10000] [--scale 10] [--policies a,b]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from app.sim.cluster import Cluster
from app.sim.engine import simulate
from app.sim.generators import LayeredDagParams, SyntheticParams, layered_dag, synthetic_workload
from app.sim.load import at_load
from app.sim.policies import make_policy
from app.sim.problem import Problem
from app.sim.tiled import task_count, tiled_workload
from tests.unit.sim.policies.test_lookahead import reference_lookahead
from tests.unit.sim.runtime_reference import RUNTIME
from tests.unit.sim.runtime_reference import reference_schedule as runtime_reference
from tests.unit.sim.test_independent_heuristics import BATCH, IMMEDIATE, reference_schedule

LOAD = 0.95
#: Repeat a timed engine run until this many seconds are spent (at most MAX_REPEATS); keep the best.
MIN_TIMED_SECONDS = 1.0
MAX_REPEATS = 5
#: The DAG heuristics, timed on DAGs (the third table) rather than on independent tasks.
DAG = ("lookahead",)
#: The layered DAG's share of candidate parents (generators.LayeredDagParams): 0.03 gives ~3
#: parents per task at 10,000 tasks (the default 0.3 gives ~30, and the plain-Python reference,
#: which recomputes each child's inputs per candidate device, would do ~100 times the work).
DAG_DENSITY = 0.03
#: Rows and columns of a tile of the Cholesky DAG (its times come from the nominal cost model).
TILE_SIZE = 512


def build(tasks: int, seed: int) -> dict[str, Problem]:
    cluster = Cluster.homogeneous_kinds(8, 4)
    drawn = synthetic_workload(SyntheticParams(num_tasks=tasks, arrival_rate=1.0), _rng(seed))
    times = Problem.build(drawn, cluster).exec_time
    online = at_load(drawn, cluster, LOAD, times)
    at_once = drawn.evolve(arrival=np.zeros(tasks))
    return {
        f"online, load {LOAD}": Problem.build(online, cluster),
        "all at once": Problem.build(at_once, cluster),
    }


def engine_seconds(problem: Problem, name: str) -> tuple[float, np.ndarray]:
    def run() -> Any:
        return simulate(problem, make_policy(name), np.random.default_rng(0))

    times: list[float] = []
    while not times or (sum(times) < MIN_TIMED_SECONDS and len(times) < MAX_REPEATS):
        gc.collect()
        began = time.perf_counter()
        schedule = run()
        times.append(time.perf_counter() - began)
    return min(times), schedule.device


def reference_seconds(problem: Problem, name: str) -> tuple[float, list[int]]:
    if name in RUNTIME:
        decision = make_policy(name).decide(problem, np.random.default_rng(0))
        return seconds_of(
            lambda: runtime_reference(problem, name, decision.estimate, decision.priority).device
        )
    return seconds_of(lambda: reference_schedule(problem, name)[0])


def seconds_of(schedule: Callable[[], list[int]]) -> tuple[float, list[int]]:
    """One run of a plain-Python reference: (seconds, device per task)."""
    gc.collect()
    began = time.perf_counter()
    device = schedule()
    return time.perf_counter() - began, device


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policies", default=",".join(IMMEDIATE + BATCH + RUNTIME + DAG))
    args = parser.parse_args()
    chosen = args.policies.split(",")
    names = tuple(name for name in chosen if name not in DAG)
    for problem in build(200, args.seed).values():  # compile (or load) the kernels
        for name in names:
            simulate(problem, make_policy(name), np.random.default_rng(0))
    rows, agree = [], True
    for workload, problem in build(args.tasks, args.seed).items():
        for name in names:
            _progress(f"{workload}: {name}")
            ours, device = engine_seconds(problem, name)
            theirs, reference = reference_seconds(problem, name)
            same = int(np.count_nonzero(device == np.array(reference)))
            agree &= same == problem.num_tasks
            rows.append([
                workload, name, f"**{theirs / ours:.0f}x**", f"{ours:.4f}", f"{theirs:.2f}",
                f"{ours / problem.num_tasks * 1e6:.2f}", f"{same}/{problem.num_tasks}",
            ])  # fmt: skip
    print(f"### {args.tasks:,} tasks: the engine against the pure-Python reference\n")
    print(_markdown(
        ["workload", "policy", "speed engine/reference", "engine s", "reference s",
         "engine µs/task", "same device"], rows,
    ))  # fmt: skip
    if set(BATCH) & set(names):
        print(scaling_table(args.tasks, args.scale, args.seed))
    if set(DAG) & set(chosen):
        dag_rows, dags_agree = dag_table(args.tasks, args.seed)
        print(dag_rows)
        agree &= dags_agree
    print(f"\n{'every placement agrees' if agree else '**PLACEMENTS DISAGREE**'}")
    return 0 if agree else 1


def scaling_table(tasks: int, scale: int, seed: int) -> str:
    """The batch rules on n and scale * n tasks all at once: µs per task at each."""
    small, large = build(tasks, seed)["all at once"], build(tasks * scale, seed)["all at once"]
    rows = []
    for name in BATCH:
        _progress(f"all at once x{scale}: {name}")
        per_task = [engine_seconds(p, name)[0] / p.num_tasks * 1e6 for p in (small, large)]
        rows.append([name, f"{per_task[0]:.2f}", f"{per_task[1]:.2f}",
                     f"{per_task[1] / per_task[0]:.2f}"])  # fmt: skip
    header = ["policy", f"µs/task at {tasks:,}", f"µs/task at {tasks * scale:,}", "ratio"]
    return f"\n### Batch rules, all at once: linear in the tasks\n\n{_markdown(header, rows)}"


def build_dags(tasks: int, seed: int) -> dict[str, Problem]:
    cluster = Cluster.homogeneous_kinds(8, 4)
    layered = layered_dag(LayeredDagParams(num_tasks=tasks, density=DAG_DENSITY), _rng(seed))
    tiles = 1
    while task_count("cholesky", tiles + 1) <= tasks:
        tiles += 1
    cholesky = tiled_workload("cholesky", tiles, TILE_SIZE)
    return {
        f"layered DAG, density {DAG_DENSITY}": Problem.build(layered, cluster),
        f"Cholesky {tiles}x{tiles} tiles": Problem.build(cholesky, cluster),
    }


def lookahead_devices(problem: Problem) -> list[int]:
    device, _, _ = reference_lookahead(problem)
    return device


def dag_table(tasks: int, seed: int) -> tuple[str, bool]:
    """lookahead through the engine against the plain-Python reference, and whether every task
    went to the same device."""
    problems = build_dags(tasks, seed)
    for problem in build_dags(200, seed).values():  # compile (or load) the kernel
        simulate(problem, make_policy("lookahead"), np.random.default_rng(0))
    rows, agree = [], True
    for workload, problem in problems.items():
        _progress(f"{workload}: lookahead")
        ours, device = engine_seconds(problem, "lookahead")
        theirs, reference = seconds_of(partial(lookahead_devices, problem))
        same = int(np.count_nonzero(device == np.array(reference)))
        agree &= same == problem.num_tasks
        rows.append([
            workload, f"{problem.num_tasks:,}", f"{problem.workload.num_edges:,}",
            f"**{theirs / ours:.0f}x**", f"{ours:.4f}", f"{theirs:.2f}",
            f"{ours / problem.num_tasks * 1e6:.2f}", f"{same}/{problem.num_tasks}",
        ])  # fmt: skip
    header = ["workload", "tasks", "edges", "speed engine/reference", "engine s", "reference s",
              "engine µs/task", "same device"]  # fmt: skip
    table = _markdown(header, rows)
    return f"\n### lookahead on static DAGs: the engine against the reference\n\n{table}", agree


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


if __name__ == "__main__":
    raise SystemExit(main())
