"""The API and queue path against two Celery peers on the same machine, broker and worker shape,
in one run (issue 12's table, issue 23's durable peer):

- the **bare** peer: a no-op task, its result in the Redis result backend; it stores nothing;
- the **durable** peer: a task that inserts and commits one PostgreSQL row (in the same
  database as ours), the client reading the result back from that row. It does what a run must
  do at the least (a durable record), and nothing of ours (no API, no spec, no simulation);
- the **front** peer, the floor of our contract: the durable peer behind an HTTP API
  (`front`, served by uvicorn as ours is). Its `POST` inserts and commits a job's row before
  it answers `202` and then sends a task that marks the row succeeded and commits; the client
  `GET`s the job until it has. It is the least any API that promises a recorded job at `202`
  does on this broker and database, with nothing else of ours (no key, no spec, no
  idempotency, no simulation), so front / durable is the best round-trip ratio such an API
  reaches with this stack (uvicorn, FastAPI, psycopg2, Celery) here, and ours / front is what
  our own work adds.

1. Round trip: bare `apply_async(noop).get()`; durable `apply_async(durable)` and then SELECT
   the row until it is there; ours POST a 10-task run (policy greedy) and GET it until it
   succeeded; front POST a job and GET it until it succeeded. `--trials` sequential trials
   each (after 20 untimed ones); p50 and p95. Goals: ours <= 3x bare, <= 1.5x durable (p50).
2. Throughput with `--in-flight` messages in flight: that many noops sent at once and all
   results awaited (tasks/s); that many durable tasks sent at once (rows/s from the first
   send to the last row's commit, both on this machine's clock); that many runs POSTed by 8
   client threads until the last one succeeded, read from the database (runs/s: first run's
   insert to last run's finish); that many front jobs POSTed the same way (jobs/s: first
   insert to last commit). Goals: ours >= 1/3 of bare, >= 1/2 of durable.
3. The API at `--clients` concurrent HTTP clients (asyncio + httpx), each sending
   `--requests` requests in a row, after a warm-up: p95 of `/health/live` (the peer), of
   `GET /api/v1/runs/{id}` and of `POST /api/v1/runs`. Goals: GET <= 1.3x and
   POST <= 2x the peer's p95. Both workers are stopped first: this measures the API alone.

Starts its own PostgreSQL (durable, as `make run` does) and Valkey in a temporary folder, one
uvicorn API process, one `celery worker` of ours with 2 pool processes, a peer Celery app
(this module's `bare`, with the no-op, the durable and the front's task, the same broker, the
same reliability settings: late acks, prefetch 1, priority steps) with a worker of the same
shape, and the front peer's uvicorn process (this module's `front`).
Markdown to stdout, progress to stderr; nothing is kept.

    .venv/bin/python bench/system.py [--trials 200] [--in-flight 300] [--clients 50]
                                     [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from celery import Celery
from fastapi import FastAPI, HTTPException

# Siblings: bench/ is on sys.path when this file runs as a script (and for the bare worker,
# whose PYTHONPATH names it).
from study import Process, cpu_model, embedded_stack, free_port, log, start_api, start_worker

ROOT = Path(__file__).resolve().parents[1]
#: A run whose simulation takes well under a millisecond: what is measured is the path.
TINY_RUN = {
    "workload": {"kind": "synthetic", "num_tasks": 10, "seed": 1},
    "cluster": {"cpus": 2, "gpus": 1},
    "policies": ["greedy"],
}
ROUND_TRIP_GOAL = 3.0
THROUGHPUT_GOAL = 1 / 3
DURABLE_ROUND_TRIP_GOAL = 1.5
DURABLE_THROUGHPUT_GOAL = 1 / 2
#: The durable peer's table, in our database (its own name: nothing of ours reads it).
DURABLE_TABLE = "bench_durable_peer"
#: The front peer's jobs, in our database too.
FRONT_TABLE = "bench_front_peer"
GET_GOAL, POST_GOAL = 1.3, 2.0
WARM_UP = 20

# --- the bare peer -------------------------------------------------------------------------------
bare = Celery("bare", set_as_current=False)


@bare.task(name="bare.noop")
def noop() -> None:
    return None


_connection: Any = None


def _database() -> Any:
    """One psycopg2 connection per pool process, opened at its first durable task."""
    global _connection
    if _connection is None or _connection.closed:
        import psycopg2

        _connection = psycopg2.connect(os.environ["BENCH_DURABLE_DSN"])
    return _connection


@bare.task(name="bare.durable", ignore_result=True)
def durable(key: str, sent_at: float) -> None:
    """Insert and commit one row: the least a durable task does. Its result is the row."""
    connection = _database()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DURABLE_TABLE} (key, sent_at, result, committed_at) "
            "VALUES (%s, to_timestamp(%s), %s, clock_timestamp())",
            (key, sent_at, '{"status": "succeeded"}'),
        )
    connection.commit()


@bare.task(name="bare.front_done", ignore_result=True)
def front_done(key: str) -> None:
    """The front peer's task: mark its job succeeded and commit (its result is the row)."""
    connection = _database()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {FRONT_TABLE} SET status = 'succeeded', finished_at = clock_timestamp() "
            "WHERE key = %s",
            (key,),
        )
    connection.commit()


# --- the front peer: the durable peer behind an HTTP API ------------------------------------------
#: Its handlers twice: on the event loop (`/jobs`: the least work per request) and in
#: FastAPI's threadpool (`/threaded/jobs`: as ours, whose event loop must not block while it
#: serves live streams).
front = FastAPI()
_front_pool: Any = None
_front_pool_lock = threading.Lock()


@contextmanager
def _front_cursor() -> Iterator[Any]:
    """A pooled autocommit connection's cursor: each statement a transaction, committed
    durably. The pool is made at the first request (not at import: the bare worker forks)."""
    global _front_pool
    with _front_pool_lock:
        if _front_pool is None:
            from psycopg2.pool import ThreadedConnectionPool

            _front_pool = ThreadedConnectionPool(1, 20, os.environ["BENCH_DURABLE_DSN"])
    connection = _front_pool.getconn()
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        _front_pool.putconn(connection)


def _record_job() -> dict[str, str]:
    """Record a job (committed before the answer), then send its task."""
    key = secrets.token_hex(8)
    with _front_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FRONT_TABLE} (key, status, created_at) "
            "VALUES (%s, 'queued', clock_timestamp())",
            (key,),
        )
    front_done.apply_async((key,))
    return {"id": key}


def _job_status(key: str) -> dict[str, str]:
    with _front_cursor() as cursor:
        cursor.execute(f"SELECT status FROM {FRONT_TABLE} WHERE key = %s", (key,))
        row = cursor.fetchone()
    if row is None:
        raise HTTPException(404)
    return {"status": row[0]}


@front.post("/jobs", status_code=202)
async def front_submit() -> dict[str, str]:
    return _record_job()


@front.get("/jobs/{key}")
async def front_status(key: str) -> dict[str, str]:
    return _job_status(key)


@front.post("/threaded/jobs", status_code=202)
def front_submit_threaded() -> dict[str, str]:
    return _record_job()


@front.get("/threaded/jobs/{key}")
def front_status_threaded(key: str) -> dict[str, str]:
    return _job_status(key)


#: The front peer's two ways, by the prefix of their paths.
FRONTS = {"front_loop": "", "front_threaded": "/threaded"}


def configure_bare(redis_url: str) -> None:
    """Our worker's reliability settings (celeryconfig.py), nothing else of ours."""
    bare.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="bare",
        broker_transport_options={
            "priority_steps": list(range(10)),
            "sep": ":",
            "queue_order_strategy": "priority",
        },
    )


if "BENCH_BARE_REDIS_URL" in os.environ:  # imported by a peer's process (peer_env)
    configure_bare(os.environ["BENCH_BARE_REDIS_URL"])


def start_bare_worker(logs: Path, redis_url: str, dsn: str) -> Process:
    command = [sys.executable, "-m", "celery", "-A", "system:bare", "worker", "--queues", "bare",
               "--concurrency", "2", "--hostname", f"bare-{secrets.token_hex(3)}@localhost",
               "--loglevel", "INFO", "--without-mingle", "--without-gossip"]  # fmt: skip
    return Process("bare-worker", command, logs, " ready.", peer_env(redis_url, dsn))


def peer_env(redis_url: str, dsn: str) -> dict[str, str]:
    """What the peers' processes import this module with: the broker, the database."""
    return {
        "BENCH_BARE_REDIS_URL": redis_url,
        "BENCH_DURABLE_DSN": dsn,
        "PYTHONPATH": str(ROOT / "bench"),
    }


def create_peer_tables(dsn: str) -> None:
    import psycopg2

    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {DURABLE_TABLE} (key text PRIMARY KEY, sent_at timestamptz NOT NULL, "
            "result jsonb NOT NULL, committed_at timestamptz NOT NULL)"
        )
        cursor.execute(
            f"CREATE TABLE {FRONT_TABLE} (key text PRIMARY KEY, status text NOT NULL, "
            "created_at timestamptz NOT NULL, finished_at timestamptz)"
        )


def start_front(port: int, logs: Path, redis_url: str, dsn: str) -> Process:
    """The front peer, served as ours is (app/devstack/api_server.py's flags)."""
    from app.devstack.api_server import api_command

    command = [part if part != "api.main:app" else "system:front" for part in api_command(port)]
    return Process("front", command, logs, "Application startup complete", peer_env(redis_url, dsn))


# --- measurements --------------------------------------------------------------------------------
def p(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def timed(action: Callable[[], Any], trials: int) -> list[float]:
    for _ in range(WARM_UP):
        action()
    times = []
    for _ in range(trials):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def bare_round_trip() -> None:
    noop.apply_async().get(timeout=30)


def durable_round_trip(cursor: Any) -> Callable[[], None]:
    """Send the durable task, then read its row until it is there (as ours GETs its run)."""

    def once() -> None:
        key = secrets.token_hex(8)
        durable.apply_async((key, time.time()))
        deadline = time.monotonic() + 30
        while True:
            cursor.execute(f"SELECT result FROM {DURABLE_TABLE} WHERE key = %s", (key,))
            row = cursor.fetchone()
            if row is not None and row[0]["status"] == "succeeded":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the durable task {key} wrote no row in 30 s")
            time.sleep(0.001)

    return once


def durable_throughput(cursor: Any, in_flight: int) -> float:
    """Rows/s from the first send to the last row's commit."""
    keys = [secrets.token_hex(8) for _ in range(in_flight)]
    for key in keys:
        durable.apply_async((key, time.time()))
    return rate_when_done(
        cursor,
        f"SELECT count(*), min(sent_at), max(committed_at) FROM {DURABLE_TABLE} "
        "WHERE key = ANY(%s)",
        keys,
    )


def front_throughput(http: httpx.Client, prefix: str, cursor: Any, in_flight: int) -> float:
    """Jobs/s POSTed by 8 threads (as ours), from the first job's insert to the last's commit."""
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: _submit(http, f"{prefix}/jobs", None), range(in_flight)))
    return rate_when_done(
        cursor,
        f"SELECT count(*), min(created_at), max(finished_at) FROM {FRONT_TABLE} "
        "WHERE key = ANY(%s) AND status = 'succeeded'",
        keys,
    )


def rate_when_done(cursor: Any, query: str, keys: list[str]) -> float:
    """Once `query` (count, first, last of the rows of `keys`) counts them all: per second."""
    deadline = time.monotonic() + 300
    while True:
        cursor.execute(query, (keys,))
        done, first, last = cursor.fetchone()
        if done == len(keys):
            return len(keys) / (last - first).total_seconds()
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {len(keys)} done: {query}")
        time.sleep(0.05)


def our_round_trip(http: httpx.Client, trips: list[tuple[str, float]]) -> Callable[[], None]:
    """POST the run, then GET it until it succeeded; each trip's (run id, POST's seconds) goes to
    `trips`, for `round_trip_phases`."""

    def once() -> None:
        started = time.perf_counter()
        response = http.post("/api/v1/runs", json=TINY_RUN)
        response.raise_for_status()
        trips.append((str(response.json()["id"]), time.perf_counter() - started))
        poll_until_succeeded(http, response.headers["Location"])

    return once


def front_round_trip(http: httpx.Client, prefix: str, posts: list[float]) -> Callable[[], None]:
    """POST a job to the front peer (its paths under `prefix`), then GET it until it succeeded;
    the POST's seconds go to `posts`."""

    def once() -> None:
        started = time.perf_counter()
        key = _submit(http, f"{prefix}/jobs", None)
        posts.append(time.perf_counter() - started)
        poll_until_succeeded(http, f"{prefix}/jobs/{key}")

    return once


def poll_until_succeeded(http: httpx.Client, location: str) -> None:
    """GET `location` every millisecond until its status is `succeeded`."""
    deadline = time.monotonic() + 30
    while (status := http.get(location).json()["status"]) != "succeeded":
        if status in ("failed", "cancelled") or time.monotonic() > deadline:
            raise RuntimeError(f"{location} ended {status}")
        time.sleep(0.001)


#: Where a round trip of ours goes: the client's POST, then the phases the run's row stamps
#: (server clocks: the insert's transaction start, the send noted, the claim, the finish).
PHASES = (
    ("POST → 202 (client)", None),
    ("insert → message sent (API)", ("created_at", "enqueued_at")),
    ("sent → claimed (broker, Celery, the claim)", ("enqueued_at", "started_at")),
    (
        "claimed → finished (simulate, sample, digest; the finish's lock)",
        ("started_at", "finished_at"),
    ),
)


def round_trip_phases(trips: list[tuple[str, float]], round_trips: list[float]) -> list[float]:
    """The median of each PHASES step over the timed trips (the warm-up's are the first), and
    last the rest of the round trip: the finish's commit and the GETs until one saw it."""
    from sqlalchemy import select

    from app.db.models import Run
    from app.db.session import session_scope

    timed_trips = trips[-len(round_trips) :]
    with session_scope() as session:
        rows = {
            str(row.id): row
            for row in session.execute(
                select(
                    Run.id, Run.created_at, Run.enqueued_at, Run.started_at, Run.finished_at
                ).where(Run.id.in_([run_id for run_id, _ in timed_trips]))
            )
        }
    steps: list[list[float]] = [[] for _ in range(len(PHASES) + 1)]
    for (run_id, post_s), total in zip(timed_trips, round_trips, strict=True):
        row = rows[run_id]
        steps[0].append(post_s)
        for index, (_, span) in enumerate(PHASES[1:], start=1):
            begin, end = (getattr(row, name) for name in span)
            steps[index].append((end - begin).total_seconds())
        after_202 = total - post_s
        steps[-1].append(after_202 - (row.finished_at - row.enqueued_at).total_seconds())
    return [statistics.median(step) for step in steps]


def bare_throughput(in_flight: int) -> float:
    started = time.perf_counter()
    results = [noop.apply_async() for _ in range(in_flight)]
    for result in results:
        result.get(timeout=120)
    return in_flight / (time.perf_counter() - started)


def our_throughput(http: httpx.Client, cursor: Any, in_flight: int) -> float:
    """Runs/s from the first run's insert to the last run's finish (database clocks)."""
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: _submit(http, "/api/v1/runs", TINY_RUN), range(in_flight)))
    return rate_when_done(
        cursor,
        "SELECT count(*), min(created_at), max(finished_at) FROM runs "
        "WHERE id = ANY(%s::uuid[]) AND status = 'succeeded'",
        ids,
    )


def _submit(http: httpx.Client, path: str, body: dict[str, Any] | None) -> str:
    response = http.post(path, json=body)
    response.raise_for_status()
    return str(response.json()["id"])


async def concurrent_latencies(
    url: str, key: str, method: str, path: str, clients: int, requests: int
) -> tuple[list[float], float]:
    """`clients` coroutines each sending `requests` requests in a row: every latency (s), and
    the time they all took (s)."""
    headers = {"X-API-Key": key}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def client(count: int, into: list[float]) -> None:
            for _ in range(count):
                started = time.perf_counter()
                if method == "POST":
                    response = await http.post(path, json=TINY_RUN)
                else:
                    response = await http.get(path)
                if response.status_code >= 400:
                    raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
                into.append(time.perf_counter() - started)

        await asyncio.gather(*(client(2, []) for _ in range(clients)))  # warm-up
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(client(requests, latencies) for _ in range(clients)))
        return latencies, time.perf_counter() - started


# --- the report ----------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(met: bool) -> str:
    return "met" if met else "**NOT met**"


def round_trip_rows(
    p50_label: str, p95_label: str, peer: list[float], ours: list[float], goal: float
) -> list[tuple[str, ...]]:
    """The p50 row (against `goal`) and the p95 row of a round trip against one peer."""
    ratio = statistics.median(ours) / statistics.median(peer)
    return [
        (
            p50_label,
            ms(statistics.median(peer)),
            ms(statistics.median(ours)),
            f"**{ratio:.2f}x**",
            f"≤ {goal:g}x",
            verdict(ratio <= goal),
        ),
        (p95_label, ms(p(peer, 95)), ms(p(ours, 95)), f"{p(ours, 95) / p(peer, 95):.2f}x", "", ""),
    ]


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    bare_rt, ours_rt = figures["bare_rt"], figures["ours_rt"]
    durable_rt = figures["durable_rt"]
    tp_ratio = figures["ours_tp"] / figures["bare_tp"]
    durable_tp_ratio = figures["ours_tp"] / figures["durable_tp"]
    health, get, post = (p(figures[k], 95) for k in ("health", "get", "post"))
    clients = f"p95 at {args.clients} clients: `GET /health/live` vs"
    rows = [
        *round_trip_rows(
            "round trip p50: `apply_async(noop).get()` vs POST 10-task run → GET until succeeded",
            "round trip p95",
            bare_rt,
            ours_rt,
            ROUND_TRIP_GOAL,
        ),
        *round_trip_rows(
            "round trip p50, durable peer: `apply_async(durable)` → SELECT its row until there",
            "round trip p95, durable peer",
            durable_rt,
            ours_rt,
            DURABLE_ROUND_TRIP_GOAL,
        ),
        (
            f"throughput, {args.in_flight} in flight",
            f"{figures['bare_tp']:.0f} tasks/s",
            f"{figures['ours_tp']:.1f} runs/s",
            f"**{tp_ratio:.2f}x** (1/{1 / tp_ratio:.1f})",
            "≥ 1/3",
            verdict(tp_ratio >= THROUGHPUT_GOAL),
        ),
        (
            f"throughput, {args.in_flight} in flight, durable peer (rows/s, send → commit)",
            f"{figures['durable_tp']:.0f} rows/s",
            f"{figures['ours_tp']:.1f} runs/s",
            f"**{durable_tp_ratio:.2f}x** (1/{1 / durable_tp_ratio:.1f})",
            "≥ 1/2",
            verdict(durable_tp_ratio >= DURABLE_THROUGHPUT_GOAL),
        ),
        (
            f"{clients} `GET /runs/{{id}}`",
            ms(health),
            ms(get),
            f"**{get / health:.2f}x**",
            f"≤ {GET_GOAL}x",
            verdict(get / health <= GET_GOAL),
        ),
        (
            f"{clients} `POST /runs`",
            ms(health),
            ms(post),
            f"**{post / health:.2f}x**",
            f"≤ {POST_GOAL:.0f}x",
            verdict(post / health <= POST_GOAL),
        ),
    ]
    print(
        f"\n## System: API and queue path vs bare and durable Celery ({args.trials} trials, "
        f"{args.in_flight} in flight, {args.clients} clients x {args.requests} requests)\n"
    )
    print("| what | peer | ours | ratio | goal | |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for name, what in (("health", "/health/live"), ("get", "GET /runs/{id}"), ("post", "POST")):
        values, took = figures[name], figures[name + "_s"]
        print(
            f"- {what} at {args.clients} clients: p50 {ms(statistics.median(values))}, "
            f"p95 {ms(p(values, 95))}, p99 {ms(p(values, 99))}; {len(values)} requests "
            f"in {took:.1f} s ({len(values) / took:.0f}/s)"
        )
    print(
        "\nWhere our round trip goes (median of each step over the timed trips; the steps need "
        "not add up to the median round trip):\n"
    )
    print("| step | median | share of the durable peer's round trip p50 |")
    print("|---|---|---|")
    durable_p50 = statistics.median(durable_rt)
    names = [name for name, _ in PHASES] + [
        "finished → a GET saw `succeeded` (the commit, the poll)"
    ]
    for name, seconds in zip(names, figures["phases"], strict=True):
        print(f"| {name} | {ms(seconds)} | {seconds / durable_p50:.2f}x |")
    floor_report(figures)
    load = ", ".join(f"{value:.1f}" for value in figures["load"])
    print(
        f"\nMachine: {os.cpu_count()} cores, {cpu_model()}; Python "
        f"{platform.python_version()}; load average before / after: {load}; "
        f"total {figures['total_s']:.0f} s."
    )


def floor_report(figures: dict[str, Any]) -> None:
    """The front peer's two ways beside the durable peer and ours: how near an HTTP API with a
    durable `202` in front of the same queue gets to the durable goals, and what ours adds."""
    print(
        "\nThe floor: the durable peer behind an HTTP API (the front peer: its `POST` commits a "
        "job's row, then sends a task that marks it succeeded; `GET` until it has):\n"
    )
    print(
        "| what | round trip p50 | p95 | p50 / durable peer's | throughput | "
        "/ durable peer's | `POST` → `202` p50 |"
    )
    print("|---|---|---|---|---|---|---|")
    durable_p50, durable_tp = statistics.median(figures["durable_rt"]), figures["durable_tp"]
    for label, name, post in (
        ("durable peer", "durable", None),
        ("front peer, handlers on the event loop", "front_loop", figures["front_loop_post"]),
        ("front peer, handlers in the threadpool (as ours)", "front_threaded",
         figures["front_threaded_post"]),
        ("ours", "ours", figures["phases"][0]),
    ):  # fmt: skip
        trips, throughput = figures[f"{name}_rt"], figures[f"{name}_tp"]
        p50 = statistics.median(trips)
        print(
            f"| {label} | {ms(p50)} | {ms(p(trips, 95))} | **{p50 / durable_p50:.2f}x** | "
            f"{throughput:.0f}/s | **1/{durable_tp / throughput:.1f}** | "
            f"{ms(post) if post is not None else ''} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="sequential round trips each")
    parser.add_argument("--in-flight", type=int, default=300, help="messages / runs at once")
    parser.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    args = parser.parse_args()

    figures: dict[str, Any] = {"load": [os.getloadavg()[0]]}
    started = time.monotonic()
    with ExitStack() as cleanup:
        stack = embedded_stack(cleanup, "system")
        api_key, logs, redis_url = stack.api_key, stack.logs, stack.redis_url
        configure_bare(redis_url)
        dsn = stack.database_url.replace("postgresql+psycopg2://", "postgresql://")
        create_peer_tables(dsn)
        api_port = free_port()
        cleanup.callback(start_api(api_port, logs).stop)
        worker = start_worker(2, logs, {})
        cleanup.callback(worker.stop)
        bare_worker = start_bare_worker(logs, redis_url, dsn)
        cleanup.callback(bare_worker.stop)
        front_port = free_port()
        cleanup.callback(start_front(front_port, logs, redis_url, dsn).stop)
        front_http = httpx.Client(base_url=f"http://127.0.0.1:{front_port}", timeout=60)
        cleanup.callback(front_http.close)
        url = f"http://127.0.0.1:{api_port}"
        import psycopg2

        reader = psycopg2.connect(dsn)
        reader.autocommit = True  # each SELECT sees the newest commits
        cleanup.callback(reader.close)
        cursor = reader.cursor()
        with httpx.Client(base_url=url, headers={"X-API-Key": api_key}, timeout=60) as http:
            log(f"round trips: {args.trials} each of bare, durable, front (2 ways), ours")
            figures["bare_rt"] = timed(bare_round_trip, args.trials)
            figures["durable_rt"] = timed(durable_round_trip(cursor), args.trials)
            for name, prefix in FRONTS.items():
                posts: list[float] = []
                figures[f"{name}_rt"] = timed(
                    front_round_trip(front_http, prefix, posts), args.trials
                )
                figures[f"{name}_post"] = statistics.median(posts[-args.trials :])
            trips: list[tuple[str, float]] = []
            figures["ours_rt"] = timed(our_round_trip(http, trips), args.trials)
            figures["phases"] = round_trip_phases(trips, figures["ours_rt"])
            log(f"throughput: {args.in_flight} in flight")
            figures["bare_tp"] = bare_throughput(args.in_flight)
            figures["durable_tp"] = durable_throughput(cursor, args.in_flight)
            for name, prefix in FRONTS.items():
                figures[f"{name}_tp"] = front_throughput(front_http, prefix, cursor, args.in_flight)
            figures["ours_tp"] = our_throughput(http, cursor, args.in_flight)
            run_id = _submit(http, "/api/v1/runs", TINY_RUN)
        worker.stop()  # the API alone from here on
        bare_worker.stop()
        for name, method, path in (
            ("health", "GET", "/health/live"),
            ("get", "GET", f"/api/v1/runs/{run_id}"),
            ("post", "POST", "/api/v1/runs"),
        ):
            log(f"{args.clients} clients: {method} {path}")
            figures[name], figures[name + "_s"] = asyncio.run(
                concurrent_latencies(url, api_key, method, path, args.clients, args.requests)
            )
        figures["total_s"] = time.monotonic() - started
        figures["load"].append(os.getloadavg()[0])
        report(figures, args)


if __name__ == "__main__":
    main()
