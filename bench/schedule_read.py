"""Reading one policy's per-task schedule for a page: recomputed from the run's spec and seed
(what the run page, the CSV and the API do now: app/services/schedules.py) against read back from
its stored compressed .npz (what they did before, and still do for learned's): ratios in the same
run.

For each size (synthetic workload, 4 CPU cores, 2 GPUs, policies greedy, heft and oracle, as
bench/study.py's runs): simulate the spec once as a worker does (`simulate_spec`), pack each
policy's schedule as a worker stored it (`app.db.schedules.pack`), then time, per policy, the
median of `--repeats`:
- **recompute**: `recompute_schedule` (build the scenario, simulate that one policy) and the
  digest that checks it against the run's, as a read after a fresh start does (no cache);
- **stored read**: `app.db.schedules.unpack` of the packed bytes. The database round trip that
  fetched those bytes is not included, so the stored read is a lower bound (in its favour).
The bench fails unless every recomputed digest equals the run's.

    PYTHONPATH=. .venv/bin/python bench/schedule_read.py [--tasks 10000,100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.db.schedules import pack, unpack
from app.runspec import RunSpec
from app.services.simulation import recompute_schedule, simulate_spec
from app.sim.engine import warm_up

POLICIES = ["greedy", "heft", "oracle"]


def spec(tasks: int) -> RunSpec:
    return RunSpec.model_validate(
        {
            "workload": {"kind": "synthetic", "num_tasks": tasks, "seed": 3},
            "cluster": {"cpus": 4, "gpus": 2},
            "policies": POLICIES,
            "seed": 7,
        }
    )


def median_s(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass(frozen=True)
class Row:
    tasks: int
    policy: str
    stored_mb: float
    recompute_s: float
    stored_s: float


def measure(tasks: int, repeats: int) -> list[Row]:
    run = spec(tasks)
    simulation = simulate_spec(run)
    rows = []
    for outcome in simulation.outcomes:
        digest, stored = outcome.schedule.digest(), pack(outcome.schedule)

        def recompute(policy: str = outcome.policy, digest: str = digest) -> None:
            if recompute_schedule(run, policy)[1].digest() != digest:
                raise SystemExit(f"{policy}'s recomputed schedule differs from the run's")

        rows.append(
            Row(
                tasks,
                outcome.policy,
                len(stored) / 1e6,
                median_s(recompute, repeats),
                median_s(lambda stored=stored: unpack(stored), repeats),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="10000,100000", help="run sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="timings per policy (median)")
    args = parser.parse_args()
    warm_up()
    rows = [row for n in args.tasks.split(",") for row in measure(int(n), args.repeats)]
    print(
        f"Ran {datetime.now():%Y-%m-%d}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end.\n"
    )
    header = "tasks | policy | stored .npz MB | recompute ms | stored read ms | recompute / stored"
    print(f"| {header} |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.tasks:,} | {row.policy} | {row.stored_mb:.2f} | {1000 * row.recompute_s:.1f} "
            f"| {1000 * row.stored_s:.1f} | **{row.recompute_s / row.stored_s:.1f}x** |"
        )


if __name__ == "__main__":
    main()
