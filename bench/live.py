"""Live updates: from a worker's commit of a run's change to the event arriving at an SSE client,
with the database's change notifications (HMS_LIVE_NOTIFY=true, the default) and, as the peer in
the same run, with the poll alone (HMS_LIVE_NOTIFY=false: each stream reads its row every
`HMS_LIVE_POLL_S`, 0.25 s).

Each phase starts the API under uvicorn with its setting, submits `--runs` runs (100) and opens one
SSE stream per run (asyncio + httpx, every stream on its own connection), which a real worker
(`celery worker --concurrency 2`, started once for both phases) executes: each run commits
`running`, a progress report at most every HMS_PROGRESS_INTERVAL_S (0.5 s) and `succeeded`. The
latency of an event is its arrival at the client (the wall clock when its `data:` line is read)
minus its commit's time:
- a one-row commit (`running`: the claim, a progress report): the `updated_at` the event
  carries, which the worker takes just *before* that small transaction commits (when the update
  is flushed), so the figure is conservative by the commit's own time;
- the terminal state: its transaction's commit timestamp as PostgreSQL recorded it
  (`track_commit_timestamp`, turned on here; read after the phase from the row's `xmin`). Its
  `updated_at` is taken before the results, schedules and samples are written in that same
  transaction, so the latency against it is shown too, but it is not the commit's.
Both clocks are this machine's. A stream's first event (the state when it connected) is no
change and is not counted. Goal: p95 <= 50 ms with notifications; the load average is printed
beside it (2 cores shared with other work, and the clients, the API, the worker and PostgreSQL
all run here).

Starts its own PostgreSQL (durable, as `make run` does) and Valkey in a temporary folder; markdown
to stdout, progress to stderr; nothing is kept.

    .venv/bin/python bench/live.py [--runs 100] [--tasks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import create_engine, text

# Siblings: bench/ is on sys.path when this file runs as a script.
from study import (
    ROOT,
    Stack,
    cpu_model,
    embedded_stack,
    free_port,
    log,
    start_api,
    start_worker,
)

GOAL_P95_S = 0.050
#: How long (s) one phase may take before the bench gives up on it.
PHASE_TIMEOUT_S = 600


def run_spec(tasks: int, seed: int) -> dict[str, Any]:
    """A run of about a second of simulation here, so that it reports progress a few times."""
    return {
        "workload": {"kind": "synthetic", "num_tasks": tasks, "seed": seed},
        "cluster": {"cpus": 8, "gpus": 2},
        "policies": ["greedy", "heft"],
    }


@dataclass
class Arrivals:
    """What the clients of one phase saw: a one-row commit's latency (s) against the
    `updated_at` it carries, and per run when its terminal state arrived and its `updated_at`."""

    one_row: list[float] = field(default_factory=list)
    terminal: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)


async def watch(http: httpx.AsyncClient, run_id: str, arrivals: Arrivals) -> None:
    """Follow one run's stream to its end, noting each change's arrival."""
    first = True
    async with http.stream("GET", f"/api/v1/runs/{run_id}/events") as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            arrived = datetime.now(UTC)
            if first:  # the state when the stream opened: no change
                first = False
                continue
            state = json.loads(line[6:])
            updated_at = datetime.fromisoformat(state["updated_at"])
            if state["status"] == "running":  # claimed, or a progress report
                arrivals.one_row.append((arrived - updated_at).total_seconds())
            else:
                arrivals.terminal[run_id] = (arrived, updated_at)


def commit_times(database_url: str, run_ids: list[str]) -> dict[str, datetime]:
    """When each run's last transaction (its terminal state's) committed, as PostgreSQL recorded
    it (track_commit_timestamp)."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id::text, pg_xact_commit_timestamp(xmin) FROM runs "
                "WHERE id::text = ANY(:ids)"
            ),
            {"ids": run_ids},
        ).all()
    engine.dispose()
    return {run_id: committed for run_id, committed in rows}


def track_commit_timestamps(stack: Stack) -> None:
    """Have PostgreSQL record each transaction's commit time (a server setting: a restart)."""
    engine = create_engine(stack.database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("ALTER SYSTEM SET track_commit_timestamp = on"))
    engine.dispose()
    stack.postgres.stop()
    stack.postgres.start()


async def phase(url: str, stack: Stack, runs: int, tasks: int) -> dict[str, Any]:
    """Submit `runs` runs, watch each until it ends; the latencies and the load average."""
    limits = httpx.Limits(max_connections=runs + 10, max_keepalive_connections=runs + 10)
    headers = {"X-API-Key": stack.api_key}
    arrivals = Arrivals()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=PHASE_TIMEOUT_S
    ) as http:
        watches = []
        for seed in range(runs):
            response = await http.post("/api/v1/runs", json=run_spec(tasks, seed))
            response.raise_for_status()
            watches.append(asyncio.create_task(watch(http, response.json()["id"], arrivals)))
        await asyncio.wait_for(asyncio.gather(*watches), PHASE_TIMEOUT_S)
    committed = commit_times(stack.database_url, list(arrivals.terminal))
    terminal = arrivals.terminal.items()
    terminal_times = arrivals.terminal.values()
    from_commit = [(arrived - committed[run]).total_seconds() for run, (arrived, _) in terminal]
    return {
        "latencies": arrivals.one_row + from_commit,
        "one-row commits": arrivals.one_row,
        "results commit, from its commit timestamp": from_commit,
        "results commit, from updated_at": [
            (arrived - updated_at).total_seconds() for arrived, updated_at in terminal_times
        ],
        "load": (load_before, os.getloadavg()[0]),
        "wall_s": time.monotonic() - started,
    }


def percentile(values: list[float], percent: int) -> float:
    """The `percent`-th percentile (one value: itself)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values: list[float]) -> str:
    """`events | p50 | p95 | p99` as table cells (dashes when there are none)."""
    if not values:
        return "0 | — | — | —"
    p50, p95, p99 = (ms(percentile(values, percent)) for percent in (50, 95, 99))
    return f"{len(values)} | {p50} | {p95} | {p99}"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.runs} runs of {args.tasks:,} tasks, one SSE client each.\n")
    print("| live updates | events | p50 | p95 | p99 | max | load avg (1 min) | phase s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        values = result["latencies"]
        before, after = result["load"]
        print(
            f"| {name} | {spread(values)} | {ms(max(values))} | "
            f"{before:.1f} → {after:.1f} | {result['wall_s']:.0f} |"
        )
    print(
        "\nBy commit: `running` (claimed, progress: one-row commits, from `updated_at`) and the "
        "terminal state, from its transaction's commit timestamp and from `updated_at`.\n"
    )
    print("| live updates | commit | events | p50 | p95 | p99 |")
    print("|---|---|---|---|---|---|")
    for name, result in results.items():
        for kind in (
            "one-row commits",
            "results commit, from its commit timestamp",
            "results commit, from updated_at",
        ):
            print(f"| {name} | {kind} | {spread(result[kind])} |")
    notified = percentile(results["notify (HMS_LIVE_NOTIFY=true)"]["latencies"], 95)
    polled = percentile(results["poll only (HMS_LIVE_NOTIFY=false)"]["latencies"], 95)
    verdict = "met" if notified <= GOAL_P95_S else "**NOT met**"
    print(
        f"\nGoal p95 ≤ {ms(GOAL_P95_S)} with notifications: {ms(notified)}, {verdict}; "
        f"the poll's p95 is {polled / notified:.1f}x it."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs watched, one client each")
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks per run")
    args = parser.parse_args()

    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with ExitStack() as cleanup:
        # The bootstrap model `make run` caches (.hms/cache), not trained again by the worker at
        # its start: on this loaded VM that took it past the 120 s a start may take.
        stack = embedded_stack(
            cleanup, "live", {"HMS_MODEL_CACHE_DIR": str(ROOT / ".hms" / "cache")}
        )
        track_commit_timestamps(stack)
        cleanup.callback(start_worker(2, stack.logs, {}).stop)
        for name, notify in (
            ("notify (HMS_LIVE_NOTIFY=true)", True),
            ("poll only (HMS_LIVE_NOTIFY=false)", False),
        ):
            api_port = free_port()
            log(f"phase: {name}")
            with ExitStack() as serving:
                env = {"HMS_LIVE_NOTIFY": str(notify).lower()}
                serving.callback(start_api(api_port, stack.logs, env).stop)
                url = f"http://127.0.0.1:{api_port}"
                results[name] = asyncio.run(phase(url, stack, args.runs, args.tasks))
        print(
            f"Ran {datetime.now():%Y-%m-%d}: {os.cpu_count()} cores ({cpu_model()}), "
            f"Python {platform.python_version()}; {time.monotonic() - started:.0f} s in all."
        )
        report(results, args)


if __name__ == "__main__":
    main()
