"""A study of 100,000 small runs, accepted in one request and run on two worker processes, beside
the same study at 10,000 runs as its peer: what grows with the runs, and what does not.

For each size N (10,000 then 100,000 by default): one POST /api/v1/studies of N runs of a
10-task synthetic workload (2 CPU cores, 1 GPU; policy greedy), grid {"workload.load": 10
values} x N/10 repetitions; the worker stores results only (HMS_SCHEDULE_MAX_TASKS=0,
HMS_SAMPLES_PER_RUN=0, HMS_PERF_OBSERVATIONS_PER_RUN=0): what a run keeps is bench/study.py's
subject, this one's is the study.
The API and one `celery worker --concurrency 2` (2 pool processes; nothing else consumes) are
started fresh for each size, on the one PostgreSQL and Valkey. Reported:

- accept: the client's time from the request to the 202, and the server's insert -> sent (the
  study row's `created_at` -> `enqueued_at`: validating each cell is before it, then the study's
  row alone, the commit and the one fan-out message; the runs are the fan-out's to create);
- fan-out: the study's `enqueued_at` -> the last run's `enqueued_at` (the worker creating N runs
  in COPY batches and sending their messages in batches, each batch marked sent), and the runs
  it had created when the study was measured (fewer than N if it was cancelled first);
- wall: the study's `created_at` -> `finished_at` (all runs and the aggregation). The largest
  study has `--budget-s` (1800 s): if it has not ended by then, it is measured as far as it got
  (its runs succeeded and their rate), then cancelled through the API; the time all its runs
  would take is then a projection at that rate, printed as one;
- peak memory (VmHWM, the kernel's high-water mark of resident memory) of the API, the worker's
  main process and each pool process, read from /proc just before each is stopped, and Valkey's;
- the aggregation alone, in a fresh process each (after the study ended): `streamed_statistics`
  over `outcomes_by_cell` (what the worker runs: rows from a server-side cursor, one cell at a
  time) against the peer that holds every run at once (all of the study's RunRecords, then
  `study_statistics`, as the aggregation did before); each its time and the growth of its peak
  memory above the process after its imports; both must be equal, and equal to the statistics
  the worker stored when the study ended;
- the database: pg_database_size and the biggest tables (with their indexes and TOAST).

Starts its own PostgreSQL (durable, as `make run`) and Valkey in a temporary folder (bench/study.py
`embedded_stack`). Markdown to stdout, progress to stderr; nothing is kept.

    PYTHONPATH=. .venv/bin/python bench/study_scale.py [--runs 10000,100000] [--tasks 10]
                                                     [--budget-s 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

# Siblings: bench/ is on sys.path when this file runs as a script.
from study import (
    ROOT,
    cpu_model,
    embedded_stack,
    free_port,
    log,
    seconds,
    start_api,
    start_worker,
    study_row,
    submit,
)

POLICIES = ["greedy"]
#: What a worker stores per run: results only (no per-task schedules, training samples or kernel
#: observations), so that the runs measure the study's machinery, not what a run keeps
#: (bench/study.py's part).
RESULTS_ONLY = {
    "HMS_SCHEDULE_MAX_TASKS": "0",
    "HMS_SAMPLES_PER_RUN": "0",
    "HMS_PERF_OBSERVATIONS_PER_RUN": "0",
}
LOADS = [round(0.45 + 0.05 * i, 2) for i in range(10)]
POOL_PROCESSES = 2
#: How long (s) a study may take (the largest: --budget-s) before the bench stops it.
STUDY_TIMEOUT_S = 4 * 3600
POLL_S = 5.0

#: The aggregation in a fresh process: `streamed` (the worker's way) or `materialised` (every run
#: held at once, the peer). Prints JSON: seconds, peak memory growth (KiB), equal to the stored.
AGGREGATE = """
import json, sys, time
from app.db import studies as store
from app.db.models import Study
from app.db.session import session_scope
from app.services.studies import _rank_by
from app.studies.spec import StudySpec
from app.studies.statistics import streamed_statistics, study_statistics

def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

way, study_id = sys.argv[1], sys.argv[2]
with session_scope() as session:
    study = session.get(Study, study_id)
    spec = StudySpec.model_validate(study.spec)
    stored, cells = study.statistics, spec.cells()
    rank_by = _rank_by(session, study.id, spec)
    before = peak_kib()
    started = time.perf_counter()
    groups = store.outcomes_by_cell(session, study.id)
    if way == "streamed":
        statistics = streamed_statistics(
            groups, cells, store.metric_names(session, study.id), rank_by
        )
    else:
        records = [record for _, cell_records in groups for record in cell_records]
        statistics = study_statistics(records, cells, rank_by)
    elapsed = time.perf_counter() - started
print(json.dumps({"s": elapsed, "growth_kib": peak_kib() - before, "same": statistics == stored,
                  "statistics": statistics}))
"""


def peak_kib(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM, KiB); None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def study_body(runs: int, tasks: int) -> dict[str, Any]:
    return {
        "name": f"bench: {runs} small runs",
        "base": {
            "workload": {"kind": "synthetic", "num_tasks": tasks},
            "cluster": {"cpus": 2, "gpus": 1},
            "policies": POLICIES,
        },
        "grid": {"workload.load": LOADS},
        "repetitions": runs // len(LOADS),
    }


def fan_out_s(study_id: str, enqueued_at: datetime) -> float | None:
    """None when no run was sent (a study cancelled before its first batch was created)."""
    from sqlalchemy import func, select

    from app.db.models import Run
    from app.db.session import session_scope

    with session_scope() as session:
        last = session.scalar(select(func.max(Run.enqueued_at)).where(Run.study_id == study_id))
    return None if last is None else seconds(enqueued_at, last)


def run_counts(study_id: str) -> dict[str, int]:
    from app.db import studies as store
    from app.db.session import session_scope

    with session_scope() as session:
        return store.run_counts(session, study_id)  # type: ignore[arg-type]


def aggregate_alone(study_id: str, way: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", AGGREGATE, way, study_id],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {way} aggregation failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def database_size(database_url: str) -> dict[str, Any]:
    import psycopg2

    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        total = cursor.fetchone()[0]
        cursor.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
            "ORDER BY 2 DESC LIMIT 5"
        )
        tables = cursor.fetchall()
    connection.close()
    return {"total": total, "tables": tables}


def measure(runs: int, budget_s: float, args: argparse.Namespace, stack: Any) -> dict[str, Any]:
    """One study of `runs` runs on a fresh API and worker; its figures. A study still running
    after `budget_s` is measured as far as it got, then cancelled through the API."""
    with ExitStack() as cleanup:
        api_port = free_port()
        api = start_api(api_port, stack.logs)
        cleanup.callback(api.stop)
        worker = start_worker(POOL_PROCESSES, stack.logs, RESULTS_ONLY)
        cleanup.callback(worker.stop)
        headers = {"X-API-Key": stack.api_key}
        url = f"http://127.0.0.1:{api_port}"
        with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
            log(f"submitting {runs} runs")
            study_id, client_s = submit(http, study_body(runs, args.tasks))
            log(f"accepted in {client_s:.2f} s; waiting for the study (at most {budget_s:.0f} s)")
            deadline = time.monotonic() + budget_s
            while (study := study_row(study_id)).status == "running":
                if time.monotonic() > deadline:
                    break
                time.sleep(POLL_S)
            pool = psutil.Process(worker.popen.pid).children()
            memory = {
                "API": peak_kib(api.popen.pid),
                "worker (main)": peak_kib(worker.popen.pid),
                **{f"pool process {i}": peak_kib(p.pid) for i, p in enumerate(pool, start=1)},
            }
            peaks_set_by = tasks_that_set_peaks(worker.log_path)
            stopped = seconds(study.created_at, datetime.now(study.created_at.tzinfo))
            if study.status == "running":
                log(f"out of time: cancelling the study after {stopped:.0f} s")
                cancel(http, study_id)
    study = study_row(study_id)
    counts = run_counts(study_id)
    done = counts.get("succeeded", 0)
    completed = study.status == "succeeded"
    unexpected = counts.keys() - {"succeeded", "cancelled"}
    if (not completed and study.status != "cancelled") or unexpected:
        raise RuntimeError(f"study {study_id} ended {study.status}: {counts}")
    log("timing the aggregation alone, streamed then materialised")
    return {
        "runs": runs,
        "completed": completed,
        "succeeded": done,
        "client_s": client_s,
        "insert_to_sent_s": seconds(study.created_at, study.enqueued_at),
        "fan_out_s": fan_out_s(study_id, study.enqueued_at),
        "runs_created": study.runs_created,
        "wall_s": seconds(study.created_at, study.finished_at) if completed else stopped,
        "memory_kib": memory,
        "peaks_set_by": peaks_set_by,
        "streamed": aggregate_alone(study_id, "streamed"),
        "materialised": aggregate_alone(study_id, "materialised"),
        "database": database_size(stack.database_url),
    }


def cancel(http: httpx.Client, study_id: str) -> None:
    """Cancel the study through the API; a 503 (the database busy: a cancel of 100,000 runs
    under load answered one) is logged and the cancel asked again, at most 3 times."""
    for attempt in range(1, 4):
        response = http.post(f"/api/v1/studies/{study_id}/cancel")
        if response.status_code != 503 or attempt == 3:
            response.raise_for_status()
            return
        log(f"the cancel answered 503 ({response.text[:200]}); asking again")


#: The worker's line when a task raised its pool process's peak memory (workers/signals.py).
PEAK_RISE = re.compile(
    r"/(?P<process>[\w-]+)\].* (?P<task>hms\.\w+) raised this process's peak memory "
    r"from (?P<before>[\d.]+) to (?P<after>[\d.]+) MiB"
)


def tasks_that_set_peaks(worker_log: Path) -> dict[str, list[tuple[str, float, float]]]:
    """For each pool process (as the worker's log names it), its last three rises of its peak
    memory: (task, MiB before, MiB after); the last is the task that set the process's peak."""
    rises: dict[str, list[tuple[str, float, float]]] = {}
    for line in worker_log.read_text(errors="replace").splitlines():
        if match := PEAK_RISE.search(line):
            rise = (match["task"], float(match["before"]), float(match["after"]))
            rises.setdefault(match["process"], []).append(rise)
    return {process: found[-3:] for process, found in sorted(rises.items())}


def mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.0f}"


def ratio(big: float, small: float) -> str:
    return f"**{big / small:.2f}x**" if small else "—"


def report(sizes: list[dict[str, Any]], valkey_kib: int | None, args: argparse.Namespace) -> None:
    first, last = sizes[0], sizes[-1]
    peer = f"{last['runs']:,} vs {first['runs']:,}"
    print(
        f"\n## A study of {last['runs']:,} small runs ({args.tasks} tasks, "
        f"{', '.join(POLICIES)}) on {POOL_PROCESSES} pool processes, beside {first['runs']:,}\n"
    )
    heads = [f"{s['runs']:,} runs" for s in sizes]
    print(f"| | {' | '.join(heads)} | {peer} |")
    print(f"|---|{'---|' * len(sizes)}---|")

    def row(label: str, values: list[Any], fmt: str) -> None:
        cells = " | ".join("—" if v is None else format(v, fmt) for v in values)
        measured = None not in (values[-1], values[0])
        print(f"| {label} | {cells} | {ratio(values[-1], values[0]) if measured else '—'} |")

    row("accept, client s", [s["client_s"] for s in sizes], ".2f")
    row("accept, server insert -> sent s", [s["insert_to_sent_s"] for s in sizes], ".2f")
    row("fan-out s (study sent -> last run sent)", [s["fan_out_s"] for s in sizes], ".1f")
    row("runs created by the fan-out", [s["runs_created"] for s in sizes], ",")
    row("runs succeeded", [s["succeeded"] for s in sizes], ",")
    row("wall s (insert -> aggregated, or stopped)", [s["wall_s"] for s in sizes], ".0f")
    row("runs/s", [s["succeeded"] / s["wall_s"] for s in sizes], ".1f")
    for process in first["memory_kib"]:
        values = [s["memory_kib"].get(process) or 0 for s in sizes]
        row(f"peak memory MiB, {process}", [v / 1024 for v in values], ".0f")
    for way in ("streamed", "materialised"):
        row(f"aggregation alone, {way}: s", [s[way]["s"] for s in sizes], ".1f")
        growth = [s[way]["growth_kib"] / 1024 for s in sizes]
        row(f"aggregation alone, {way}: peak growth MiB", growth, ".1f")
    row("database MiB", [s["database"]["total"] / 2**20 for s in sizes], ".0f")
    print(f"\nValkey's peak memory over both: {mib(valkey_kib)} MiB.")
    print(f"\nDatabase at {last['runs']:,} runs (both studies), biggest tables with indexes:\n")
    for table, size in last["database"]["tables"]:
        print(f"- `{table}`: {size / 2**20:.0f} MiB")
    for size in sizes:
        print(f"\nWhat set each pool process's peak at {size['runs']:,} runs (its last rises):\n")
        for process, rises in size["peaks_set_by"].items():
            steps = "; ".join(f"`{task}` {a:.0f} -> {b:.0f} MiB" for task, a, b in rises)
            print(f"- {process}: {steps}")
    for size in sizes:
        if not size["completed"]:
            projected = size["runs"] * size["wall_s"] / size["succeeded"]
            print(
                f"\nThe {size['runs']:,}-run study did not end within the bench's time: "
                f"{size['succeeded']:,} runs succeeded in {size['wall_s']:.0f} s, then it was "
                f"cancelled; at that rate all of them would take about {projected:.0f} s "
                "(a projection, not a measurement)."
            )
    same = all(s["streamed"]["statistics"] == s["materialised"]["statistics"] for s in sizes)
    stored = all(s["streamed"]["same"] for s in sizes if s["completed"])
    print(
        f"\nStreamed and materialised aggregations equal at every size: {_yes(same)}; equal to "
        f"the statistics the worker stored (the studies that ended): {_yes(stored)}."
    )
    if not (same and stored):
        raise SystemExit("an aggregation differs")


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="10000,100000", help="study sizes, the first the peer")
    parser.add_argument("--tasks", type=int, default=10, help="tasks per run")
    parser.add_argument(
        "--budget-s", type=float, default=1800, help="time (s) for the largest study"
    )
    args = parser.parse_args()
    # SIGTERM (and SIGINT, ignored in a background job otherwise) stops the servers on the way out.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    started = time.monotonic()
    with ExitStack() as cleanup:
        stack = embedded_stack(cleanup, "study-scale")
        runs = [int(n) for n in args.runs.split(",")]
        budgets = [STUDY_TIMEOUT_S] * (len(runs) - 1) + [args.budget_s]
        sizes = [measure(n, budget, args, stack) for n, budget in zip(runs, budgets, strict=True)]
        valkey_pid = int(
            next(Path(os.environ["HMS_DATA_DIR"]).parent.glob("valkey/*.pid")).read_text()
        )
        valkey_kib = peak_kib(valkey_pid)
    print(
        f"Ran {datetime.now():%Y-%m-%d}: {os.cpu_count()} cores ({cpu_model()}), "
        f"Python {platform.python_version()}; {time.monotonic() - started:.0f} s in all."
    )
    report(sizes, valkey_kib, args)


if __name__ == "__main__":
    main()
