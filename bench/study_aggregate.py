"""A study's aggregation alone at 10,000 and 100,000 runs: how its memory grows with the runs when
the number of cells stays 10, against the peer that holds every run at once.

For each size N: a study of N runs (10 offered loads x N/10 repetitions; policies greedy, heft and
oracle) is created by the real fan-out (`services.studies.fan_out_study`, in this process; its
messages go to the broker and nobody runs them), then every run is marked succeeded and given 3
results with random values in every metric, server-side (the statistics do not care where the
numbers came from; bench/study_scale.py aggregates a study that really ran, but takes ~25 min at
100,000 runs). Then, each in a fresh process (bench/study_scale.py's `AGGREGATE`): the streamed
aggregation the worker runs (`streamed_statistics` over `outcomes_by_cell`), twice, and the
materialised peer (every RunRecord of the study, then `study_statistics`); each its time and the
growth of its peak resident memory (VmHWM) above the process after its imports. The three must
give equal statistics.

Starts its own PostgreSQL (durable) and Valkey in a temporary folder (bench/study.py
`embedded_stack`). Markdown to stdout, progress to stderr; nothing is kept.

    PYTHONPATH=. .venv/bin/python bench/study_aggregate.py [--runs 10000,100000]
"""

from __future__ import annotations

import argparse
import platform
import time
from contextlib import ExitStack
from typing import Any

# Siblings: bench/ is on sys.path when this file runs as a script.
from study import cpu_model, embedded_stack, log
from study_scale import aggregate_alone

POLICIES = ["greedy", "heft", "oracle"]
LOADS = [round(0.30 + 0.05 * i, 2) for i in range(10)]
METRICS = (
    "makespan, mean_flow_time, energy, cost, mean_utilization, p95_flow_time, slr, speedup, "
    "gap_to_oracle, mean_slowdown, lower_bound, gap_to_bound"
)


def make_study(runs: int) -> str:
    """A study of `runs` succeeded runs, each with a result of every policy; its id."""
    from sqlalchemy import text

    from app.db.session import session_scope
    from app.services import studies
    from app.studies.spec import StudySpec
    from app.tenancy import Tenant
    from workers.queue import CeleryQueue

    body = {
        "name": f"bench: aggregate {runs}",
        "base": {
            "workload": {"kind": "synthetic", "num_tasks": 10},
            "cluster": {"cpus": 2, "gpus": 1},
            "policies": POLICIES,
        },
        "grid": {"workload.load": LOADS},
        "repetitions": runs // len(LOADS),
    }
    queue = CeleryQueue()
    spec = StudySpec.model_validate(body)
    study_id = studies.submit_study(Tenant(name="bench"), spec, queue).study.id
    started = time.perf_counter()
    studies.fan_out_study(study_id, queue)
    log(f"{runs} runs created by the fan-out in {time.perf_counter() - started:.0f} s")
    randoms = ", ".join("random()" for _ in METRICS.split(","))
    with session_scope() as session:
        session.execute(
            text("UPDATE runs SET status = 'succeeded' WHERE study_id = :study"),
            {"study": study_id},
        )
        for policy in POLICIES:
            session.execute(
                text(
                    f"INSERT INTO run_results (run_id, policy, utilization, {METRICS}) "
                    f"SELECT id, :policy, '{{}}'::jsonb, {randoms} FROM runs "
                    "WHERE study_id = :study"
                ),
                {"policy": policy, "study": study_id},
            )
    return str(study_id)


def measure(runs: int) -> dict[str, Any]:
    study_id = make_study(runs)
    log(f"aggregating {runs} runs: streamed twice, then materialised")
    ways = {
        "streamed": aggregate_alone(study_id, "streamed"),
        "streamed again": aggregate_alone(study_id, "streamed"),
        "materialised": aggregate_alone(study_id, "materialised"),
    }
    first = ways["streamed"]["statistics"]
    if any(way["statistics"] != first for way in ways.values()):
        raise SystemExit(f"the aggregations of {runs} runs differ")
    return {"runs": runs, **ways}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="10000,100000", help="study sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.runs.split(",")]
    started = time.monotonic()
    with ExitStack() as cleanup:
        embedded_stack(cleanup, "aggregate")
        results = [measure(runs) for runs in sizes]
    print(
        f"Ran {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {cpu_model()}, "
        f"Python {platform.python_version()}; {time.monotonic() - started:.0f} s in all.\n"
    )
    print("| runs (10 cells) | way | s | peak growth MiB | x materialised | x fewest runs |")
    print("|---|---|---|---|---|---|")
    for result in results:
        held = result["materialised"]["growth_kib"]
        for way in ("streamed", "streamed again", "materialised"):
            growth = result[way]["growth_kib"]
            fewest = results[0][way]["growth_kib"]
            print(
                f"| {result['runs']:,} | {way} | {result[way]['s']:.2f} | {growth / 1024:.1f} | "
                f"{growth / held:.2f}x | {growth / fewest:.2f}x |"
            )
    print("\nEvery way gave the same statistics at every size: yes.")


if __name__ == "__main__":
    main()
