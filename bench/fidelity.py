"""The simulator checked against reality (issue 20, item 5): tiled Cholesky and LU really executed
on this machine's cores in the order the simulated schedule gives, against the makespan the
simulator predicted for that schedule from the profile measured on this machine.

For each case (factorization, tiles N, tile size b, cores, policy):

1. the DAG (app/sim/tiled.py) gets explicit costs: every task's time on every core is the
   profile's median (`--statistic mean`: mean) time of its kernel at size b, `alone` for 1 core
   and `all_busy` for 2 cores (both cores run kernels most of the time; the profile has no state
   in between), timed on cold tiles (`hms profile measure`'s default since December 2026: each
   call on operands out of the caches, as a task in the DAG meets them), plus the executor's
   cost per task, measured before the grid with empty tasks on one core (`--overhead none`
   leaves it out); `edge_cost` is 0 (shared memory: no transfer is modelled);
2. the policy's schedule comes from `app.sim.engine.simulate` on `Cluster.processors(cores)`;
   its makespan is the prediction, and each core's tasks in order of start are the plan;
3. bench/fidelity_exec.py executes that plan (one process per core, one BLAS thread each, tiles in
   shared memory, per-task done flags), `--repeats` times on the same matrix; the real makespan
   is the median; each result is checked against NumPy/SciPy's factor (relative error < 1e-10).

It reports per case the predicted and real makespans and |pred - real| / real, per group (the
same DAG and cores) the policy pairs whose predicted makespans differ by > 5 % and whose real
runs order them the other way, and what the simulator does not model, measured from the runs
themselves (nothing is fitted): the executor's cost per task (empty tasks), the gap between a
task and the next on the same core, the wait after a parent on the other core ends, kernel times
in the DAG against the profile's, and the same kernels with inputs from the other core or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
from fidelity_exec import Executor, Trace, parents_of  # a sibling: bench/ is on sys.path
from threadpoolctl import threadpool_limits

from app.cli.measure.machine import cpu_model
from app.cli.measure.profile import Plan, measure_profile
from app.cli.measure.timing import Budget
from app.profilespec import ProfileSpec
from app.sim.cluster import Cluster
from app.sim.engine import simulate
from app.sim.experiment import policy_rng
from app.sim.policies import make_policy
from app.sim.problem import Problem
from app.sim.profile import Profile
from app.sim.tiled import TiledDag

GOAL_MEDIAN = 0.05
GOAL_WORST = 0.10
#: Predicted makespans closer than this are not expected to be ordered the same by real runs.
ORDER_MARGIN = 0.05
#: A factor that differs from NumPy/SciPy's by more than this (relative, Frobenius) is wrong.
TOLERANCE = 1e-10
KERNELS = ("potrf", "trsm", "syrk", "gemm", "getrf")


@dataclass(frozen=True)
class Grid:
    factorizations: tuple[str, ...]
    tiles: tuple[int, ...]
    sizes: tuple[int, ...]
    cores: tuple[int, ...]
    policies: tuple[str, ...]
    repeats: int


FULL = Grid(
    ("cholesky", "lu"), (4, 6, 8), (128, 256, 512), (1, 2),
    ("heft", "eft", "greedy", "round_robin", "random"), 3,
)  # fmt: skip
QUICK = Grid(("cholesky", "lu"), (4,), (128,), (1, 2), ("heft", "round_robin"), 1)
#: Per cell: 3 warm-up calls, then timed calls for 0.4 s (at least 5, at most 300).
PROFILE_BUDGET = Budget(3, 5, 300, 0.4)


@dataclass
class Case:
    factorization: str
    tiles: int
    size: int
    cores: int
    policy: str
    tasks: int
    predicted_s: float
    real_s: float
    replay_s: float  # the same plan with the real run's kernel times and no overhead
    same_plan_as: str | None
    fastest_s: float = float("nan")  # the fastest of the real runs (least disturbed by others)

    @property
    def error(self) -> float:
        return abs(self.predicted_s - self.real_s) / self.real_s

    @property
    def group(self) -> tuple[str, int, int, int]:
        return (self.factorization, self.tiles, self.size, self.cores)


# Profile, schedule, reference -----------------------------------------------------------------


def load_or_measure(path: str | None, save: str | None, sizes: Sequence[int], cores: int):
    if path:
        document = json.loads(Path(path).read_text())
    else:
        plan = Plan(tuple(sizes), PROFILE_BUDGET, processes=cores, kernels=KERNELS)
        command = "bench/fidelity.py " + " ".join(sys.argv[1:])
        _progress(f"measuring the profile: {len(KERNELS)} kernels x sizes {list(sizes)} x 2")
        document = measure_profile(plan, "fidelity-this-machine", command)
        if save:
            Path(save).write_text(json.dumps(document, indent=1))
    return document, ProfileSpec.model_validate(document).to_profile()


def kernel_time(profile: Profile, kernel: str, size: int, contention: str, statistic: str):
    """Seconds of one call: the profile's median (p50) at exactly this size, or its mean
    (log-log interpolated). The median is the default: on a shared machine a few calls
    preempted by other processes drag the mean far up (potrf b=128 alone once measured p50
    54 us, mean 415 us with the load average at 2 on 2 cores)."""
    if statistic == "mean":
        return profile.time(kernel, "cpu", size, contention)
    curve = profile.curve(kernel, "cpu", contention)
    hit = np.flatnonzero(curve.sizes == size)
    if not hit.size or np.isnan(curve.quantiles_s[hit[0], 1]):
        raise ValueError(f"the profile has no median of {kernel} at b={size} ({contention})")
    return float(curve.quantiles_s[hit[0], 1])


def predicted_costs(
    dag: TiledDag, profile: Profile, cores: int, statistic: str, overhead_s: float = 0.0
) -> np.ndarray:
    """Seconds per task per core, (tasks, cores): the profile's time, alone or all_busy, plus
    the executor's measured cost per task (`overhead_s`, from empty tasks)."""
    contention = "alone" if cores == 1 else "all_busy"
    per_kernel = {
        k: kernel_time(profile, k, dag.tile_size, contention, statistic) + overhead_s
        for k in {t.kernel for t in dag.tasks}
    }
    column = np.array([per_kernel[t.kernel] for t in dag.tasks])
    return np.repeat(column[:, None], cores, axis=1)


def schedule_plan(dag: TiledDag, costs: np.ndarray, policy: str, seed: int):
    """The policy's simulated schedule: (each core's tasks in order of start, makespan s)."""
    workload = dataclasses.replace(
        dag.workload(), exec_cost=costs, edge_cost=np.zeros(len(dag.edges))
    )
    problem = Problem.build(workload, Cluster.processors(costs.shape[1]))
    schedule = simulate(problem, make_policy(policy), policy_rng(seed, policy))
    orders = [
        [int(t) for t in np.flatnonzero(schedule.device == c)[np.argsort(
            schedule.start[schedule.device == c], kind="stable")]]
        for c in range(costs.shape[1])
    ]  # fmt: skip
    return orders, float(schedule.end.max())


def test_matrix(n: int, rng: np.random.Generator) -> np.ndarray:
    """Symmetric, entries in [-1, 1] plus n on the diagonal: positive definite (Gershgorin) and
    diagonally dominant by columns, so LU with partial pivoting never swaps rows."""
    r = rng.uniform(-1.0, 1.0, (n, n))
    return (r + r.T) / 2 + n * np.eye(n)


def reference(factorization: str, matrix: np.ndarray) -> np.ndarray:
    if factorization == "cholesky":
        return np.linalg.cholesky(matrix)
    packed, pivots = scipy.linalg.lu_factor(matrix)
    assert np.array_equal(pivots, np.arange(matrix.shape[0])), "the reference LU pivoted"
    return packed


def check(factorization: str, result: np.ndarray, expected: np.ndarray) -> float:
    got = np.tril(result) if factorization == "cholesky" else result
    error = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    if not error < TOLERANCE:
        raise AssertionError(f"{factorization}: the executed factor is off by {error:.2e}")
    return error


def replay(dag_parents: Sequence[Sequence[int]], orders: Sequence[Sequence[int]], trace: Trace):
    """The makespan of the plan with the real kernel times and nothing else (no dispatch, no
    wake-up): list scheduling in the same per-core orders."""
    duration = trace.end - trace.start
    end = np.full(len(dag_parents), np.nan)
    position = [0] * len(orders)
    free = [0.0] * len(orders)
    remaining = sum(len(o) for o in orders)
    while remaining:
        progressed = False
        for c, order in enumerate(orders):
            while position[c] < len(order):
                t = order[position[c]]
                if any(np.isnan(end[p]) for p in dag_parents[t]):
                    break
                start = max([free[c], *(end[p] for p in dag_parents[t])])
                end[t] = free[c] = start + duration[t]
                position[c] += 1
                remaining -= 1
                progressed = True
        assert progressed, "the plan contradicts the DAG"
    return float(np.nanmax(end))


# What the simulator does not model, from the traces -------------------------------------------


@dataclass
class Observations:
    """Raw samples from the real runs (seconds), keyed for the diagnostics table."""

    duration: dict[tuple[str, int, str], list[float]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )  # (kernel, b, contention) -> kernel times
    by_input: dict[tuple[str, int, bool], list[float]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )  # (kernel, b, an input last written on the other core) -> times, 2-core runs
    gap: list[float] = dataclasses.field(default_factory=list)  # same core, not waiting
    wake: list[float] = dataclasses.field(default_factory=list)  # after a parent elsewhere

    def add(self, dag: TiledDag, parents, orders, trace: Trace) -> None:
        contention = "alone" if len(orders) == 1 else "all_busy"
        for order in orders:
            previous_end = 0.0
            for position, t in enumerate(order):
                task = dag.tasks[t]
                took = trace.end[t] - trace.start[t]
                self.duration[task.kernel, dag.tile_size, contention].append(took)
                ready = max([trace.end[p] for p in parents[t]], default=0.0)
                elsewhere = [p for p in parents[t] if trace.core[p] != trace.core[t]]
                if len(orders) > 1:
                    self.by_input[task.kernel, dag.tile_size, bool(elsewhere)].append(took)
                if position and ready <= previous_end:
                    self.gap.append(trace.start[t] - previous_end)
                elif position and elsewhere and ready == max(trace.end[p] for p in elsewhere):
                    self.wake.append(trace.start[t] - ready)
                previous_end = trace.end[t]


def empty_task_cost(executor: Executor, repeats: int) -> tuple[float, float]:
    """Seconds per task of the executor alone: a Cholesky DAG of 120 empty tasks on one core
    (program order), and on two cores (round robin: every other task waits on the other core)."""
    dag = TiledDag.build("cholesky", 8, 16)
    matrix = np.eye(8 * 16)
    n = len(dag.tasks)
    one, two = [], []
    for _ in range(repeats):
        one.append(executor.run(dag, [list(range(n))], matrix, runner="empty")[1].makespan / n)
        orders = [list(range(0, n, 2)), list(range(1, n, 2))]
        two.append(executor.run(dag, orders, matrix, runner="empty")[1].makespan / n)
    return float(np.median(one)), float(np.median(two))


# The run --------------------------------------------------------------------------------------


def run_grid(
    grid: Grid,
    profile: Profile,
    executor: Executor,
    seed: int,
    statistic: str,
    overhead_s: float = 0.0,
):
    cases: list[Case] = []
    seen = Observations()
    rng = np.random.default_rng(seed)
    for fact, tiles, size in itertools.product(grid.factorizations, grid.tiles, grid.sizes):
        dag = TiledDag.build(fact, tiles, size)  # type: ignore[arg-type]
        parents = parents_of(dag)
        matrix = test_matrix(tiles * size, rng)
        expected = reference(fact, matrix)
        for cores in grid.cores:
            costs = predicted_costs(dag, profile, cores, statistic, overhead_s)
            plans: dict[str, tuple[list[list[int]], float]] = {}
            for policy in grid.policies:
                orders, predicted = schedule_plan(dag, costs, policy, seed)
                twin = next((p for p, (o, _) in plans.items() if o == orders), None)
                plans[policy] = (orders, predicted)
                real, traces = [], []
                for _ in range(grid.repeats):
                    result, trace = executor.run(dag, orders, matrix)
                    check(fact, result, expected)
                    real.append(trace.makespan)
                    traces.append(trace)
                median = traces[int(np.argsort(real)[len(real) // 2])]
                for trace in traces:
                    seen.add(dag, parents, orders, trace)
                case = Case(
                    fact, tiles, size, cores, policy, len(dag.tasks), predicted,
                    median.makespan, replay(parents, orders, median), twin, min(real),
                )  # fmt: skip
                cases.append(case)
                _progress(
                    f"{fact} N={tiles} b={size} {cores} core(s) {policy}: predicted "
                    f"{predicted * 1e3:.1f} ms, real {case.real_s * 1e3:.1f} ms, "
                    f"error {case.error:.1%}"
                )
    return cases, seen


def misordered(cases: list[Case]) -> list[tuple[Case, Case]]:
    """Pairs in the same group whose predictions differ by > ORDER_MARGIN, ordered the other
    way by the real runs."""
    pairs = []
    for a, b in itertools.combinations(cases, 2):
        if a.group != b.group:
            continue
        low, high = sorted((a.predicted_s, b.predicted_s))
        if (high - low) / low <= ORDER_MARGIN:
            continue
        if (a.predicted_s - b.predicted_s) * (a.real_s - b.real_s) < 0:
            pairs.append((a, b))
    return pairs


# Report ---------------------------------------------------------------------------------------


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def case_table(cases: list[Case]) -> str:
    header = ["factorization", "N", "b", "cores", "policy", "tasks", "predicted ms", "real ms",
              "error", "replay ms", "fastest ms"]  # fmt: skip
    rows = [
        [c.factorization, str(c.tiles), str(c.size), str(c.cores),
         c.policy + (f" (= {c.same_plan_as})" if c.same_plan_as else ""), str(c.tasks),
         f"{c.predicted_s * 1e3:.2f}", f"{c.real_s * 1e3:.2f}",
         f"{(c.predicted_s - c.real_s) / c.real_s:+.1%}", f"{c.replay_s * 1e3:.2f}",
         f"{c.fastest_s * 1e3:.2f}"]
        for c in cases
    ]  # fmt: skip
    return _markdown(header, rows)


def error_summary(cases: list[Case], fastest: bool = False) -> str:
    """Per (b, cores): |pred - real| / real with real the median run, or the fastest run."""
    if fastest:
        cases = [dataclasses.replace(c, real_s=c.fastest_s) for c in cases]
    rows = []
    keys = sorted({(c.size, c.cores) for c in cases})
    for size, cores in [*keys, (None, None)]:
        chosen = [c for c in cases if size is None or (c.size == size and c.cores == cores)]
        errors = np.array([c.error for c in chosen])
        signed = np.array([(c.predicted_s - c.real_s) / c.real_s for c in chosen])
        rows.append([
            "all" if size is None else str(size), "all" if cores is None else str(cores),
            str(len(chosen)), f"{np.median(errors):.1%}", f"{errors.max():.1%}",
            f"{np.median(signed):+.1%}",
        ])  # fmt: skip
    return _markdown(["b", "cores", "cases", "median error", "worst error", "median signed"], rows)


def diagnostics(
    seen: Observations, profile: Profile, empty: tuple[float, float], statistic: str
) -> str:
    def us(values: list[float], q: float) -> str:
        return f"{np.percentile(values, q) * 1e6:.1f}" if values else "-"

    lines = [
        f"- executor cost per empty task: {empty[0] * 1e6:.1f} us on 1 core (program order), "
        f"{empty[1] * 1e6:.1f} us per task on 2 cores (round robin, every task waits on the "
        "other core)",
        f"- gap between a task's end and the next task's start on the same core, when that task "
        f"was not waiting for a parent: median {us(seen.gap, 50)} us, p95 {us(seen.gap, 95)} us "
        f"({len(seen.gap)} samples)",
        f"- wait after the last parent (on the other core) ended, when the core was idle for it: "
        f"median {us(seen.wake, 50)} us, p95 {us(seen.wake, 95)} us ({len(seen.wake)} samples)",
        "",
    ]
    rows = []
    for (kernel, size, contention), times in sorted(seen.duration.items()):
        measured = kernel_time(profile, kernel, size, contention, statistic)
        cross = seen.by_input.get((kernel, size, True), [])
        local = seen.by_input.get((kernel, size, False), [])
        ratio = (
            f"{np.median(cross) / np.median(local):.3f} ({len(cross)}/{len(local)})"
            if contention == "all_busy" and cross and local
            else "-"
        )
        rows.append([
            kernel, str(size), contention, f"{measured * 1e6:.0f}",
            f"{np.median(times) * 1e6:.0f}", f"{np.median(times) / measured:.3f}", ratio,
        ])  # fmt: skip
    header = ["kernel", "b", "profile", f"profile {statistic} us", "in the DAG median us",
              f"DAG median / profile {statistic}", "input from other core / not (n)"]  # fmt: skip
    return "\n".join(lines) + _markdown(header, rows)


def _progress(message: str) -> None:
    print(f"[fidelity] {message}", file=sys.stderr, flush=True)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (a few cases)")
    parser.add_argument("--profile", help="a profile JSON to use instead of measuring")
    parser.add_argument("--save-profile", help="write the measured profile here")
    parser.add_argument("--tiles", type=_ints, help="tile counts N, e.g. 4,6,8")
    parser.add_argument("--sizes", type=_ints, help="tile sizes b, e.g. 128,256,512")
    parser.add_argument("--repeats", type=int, help="real runs per case (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--statistic", choices=("p50", "mean"), default="p50", help="the profile's time used"
    )
    parser.add_argument(
        "--overhead",
        choices=("measured", "none"),
        default="measured",
        help="add the executor's cost per task, measured with empty tasks before the grid",
    )
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    grid = dataclasses.replace(
        grid,
        tiles=args.tiles or grid.tiles,
        sizes=args.sizes or grid.sizes,
        repeats=args.repeats or grid.repeats,
    )
    cores = max(grid.cores)
    if (os.cpu_count() or 1) < cores:
        print(f"needs {cores} cores", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    started = time.perf_counter()
    document, profile = load_or_measure(args.profile, args.save_profile, grid.sizes, cores)
    with threadpool_limits(limits=1), Executor(cores) as executor:  # parent: no BLAS threads
        empty = empty_task_cost(executor, 5)
        overhead = empty[0] if args.overhead == "measured" else 0.0
        cases, seen = run_grid(grid, profile, executor, args.seed, args.statistic, overhead)
    load_after = os.getloadavg()
    report(grid, cases, seen, profile, empty, document, (load_before, load_after), started, args)
    return 0


def report(
    grid, cases, seen, profile, empty, document: dict[str, Any], load, started, args
) -> None:
    errors = np.array([c.error for c in cases])
    median, worst = float(np.median(errors)), float(errors.max())
    wrong = misordered(cases)
    met = median <= GOAL_MEDIAN and worst <= GOAL_WORST and not wrong
    print(f"# bench/fidelity.py, {time.strftime('%Y-%m-%d %H:%M')}")
    print(
        f"\nmachine: {cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}, "
        f"profile: {document['provenance'].get('date', '?')} "
        f"({'loaded' if 'fidelity' not in document['name'] else 'measured in this run'})"
    )
    print(f"load average (1, 5, 15 min) before: {load[0]}, after: {load[1]}")
    measurement = document.get("measurement") or {}
    overhead = f"{empty[0] * 1e6:.2f} us per task" if args.overhead == "measured" else "none"
    print(
        f"command: bench/fidelity.py {' '.join(sys.argv[1:])}; prediction: profile "
        f"{args.statistic} ({measurement.get('operands', 'unstated')} operands) + executor "
        f"overhead {overhead}"
    )
    print(f"grid: {grid}; wall time {time.perf_counter() - started:.0f} s\n")
    print(case_table(cases))
    print("\n## Error by tile size and cores\n")
    print(error_summary(cases))
    print(
        f"\nThe same against the fastest of the {grid.repeats} real runs of each case (the "
        "least disturbed by other processes; a diagnostic, the goal is judged on the median):\n"
    )
    print(error_summary(cases, fastest=True))
    print("\n## Policy order\n")
    pairs = sum(
        1
        for a, b in itertools.combinations(cases, 2)
        if a.group == b.group
        and abs(a.predicted_s - b.predicted_s) / min(a.predicted_s, b.predicted_s) > ORDER_MARGIN
    )
    print(f"{pairs} pairs of policies predicted > 5 % apart; ordered the other way by the real "
          f"runs: {len(wrong)}")  # fmt: skip
    for a, b in wrong:
        print(
            f"- {a.factorization} N={a.tiles} b={a.size} {a.cores} cores: {a.policy} "
            f"{a.predicted_s * 1e3:.2f}/{a.real_s * 1e3:.2f} ms vs {b.policy} "
            f"{b.predicted_s * 1e3:.2f}/{b.real_s * 1e3:.2f} ms (predicted/real)"
        )
    print("\n## What the simulator does not model (measured in the same runs)\n")
    print(diagnostics(seen, profile, empty, args.statistic))
    verdict = "MET" if met else "NOT MET"
    print(
        f"\nGoal (median <= {GOAL_MEDIAN:.0%}, worst <= {GOAL_WORST:.0%}, no misordered pair): "
        f"{verdict}: median {median:.1%}, worst {worst:.1%}, misordered pairs {len(wrong)}"
    )


if __name__ == "__main__":
    sys.exit(main())
