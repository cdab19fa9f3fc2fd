"""Prometheus metrics of a worker: run durations, tasks by state, retries, redeliveries and
failures, exported on HMS_WORKER_METRICS_PORT (0: none).

Tasks run in forked pool processes, each with its own memory, so the metrics use
prometheus-client's multiprocess mode: every process writes its samples to files in one folder
per worker (emptied when the worker starts), and the exporter in the worker's main process adds
them up at scrape time. A pool process that exits is marked dead; its counts stay.

The receivers are connected in workers/signals.py.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Task
from sqlalchemy import Integer, func, select

from app.db.models import Run
from app.db.session import session_scope
from app.errors import TransientStoreError
from app.settings import get_settings

log = logging.getLogger(__name__)

#: Run durations (s): from a 10 ms toy run to the 900 s soft time limit.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900)
#: The `tasks` label of a run: the smallest of these its workload fits in ("imported" when the
#: spec does not say, as for an imported DAG whose size is its file's).
TASK_BUCKETS = ((1_000, "1k"), (10_000, "10k"), (100_000, "100k"), (1_000_000, "1M"))

_started: ContextVar[float | None] = ContextVar("hms_task_started", default=None)


def enabled() -> bool:
    return get_settings().worker_metrics_port > 0


def metrics_dir(hostname: str) -> Path:
    settings = get_settings()
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", hostname)
    return settings.worker_metrics_dir or settings.data_dir / "metrics" / safe


def prepare(hostname: str) -> None:
    """worker_init, in the main process before it forks: an empty samples folder, and
    prometheus-client switched to multiprocess mode (it reads PROMETHEUS_MULTIPROC_DIR, the
    one variable set here rather than read through Settings)."""
    if not enabled():
        return
    directory = metrics_dir(hostname)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # in case it was imported before


def serve(task_names: list[str]) -> None:
    """worker_ready, in the main process: the exporter on its port, with a zero for each task's
    counters so that every series exists from the start."""
    settings = get_settings()
    if not enabled():
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    counters = instruments()
    for name in task_names:
        for counter in (counters.retries, counters.redeliveries, counters.failures):
            counter.labels(name).inc(0)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(settings.worker_metrics_port, settings.worker_metrics_host, registry)
    log.info(
        "worker metrics on http://%s:%d/metrics",
        settings.worker_metrics_host,
        settings.worker_metrics_port,
    )


def process_exited() -> None:
    """worker_process_shutdown, in a pool process that exits."""
    if enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


@dataclass(frozen=True)
class Instruments:
    run_duration: Any
    runs: Any
    tasks: Any
    retries: Any
    redeliveries: Any
    failures: Any


@lru_cache(maxsize=1)
def instruments() -> Instruments:
    """Created on first use, after `prepare` switched the mode (module import is too early)."""
    from prometheus_client import Counter, Histogram

    return Instruments(
        run_duration=Histogram(
            "hms_worker_run_duration_seconds",
            "Time a worker spent on a run's task (s), by number of policies, workload size "
            "bucket and outcome.",
            ["policies", "tasks", "outcome"],
            buckets=DURATION_BUCKETS,
        ),
        runs=Counter("hms_worker_runs", "Runs a worker's task ended, by outcome.", ["outcome"]),
        tasks=Counter("hms_worker_tasks", "Tasks that ended, by Celery state.", ["task", "state"]),
        retries=Counter("hms_worker_task_retries", "Tasks that asked to be retried.", ["task"]),
        redeliveries=Counter(
            "hms_worker_task_redeliveries",
            "Messages delivered again (their first worker died or did not acknowledge).",
            ["task"],
        ),
        failures=Counter(
            "hms_worker_task_failures",
            "Tasks that raised (a run whose spec the core rejects is a failed run, not this); "
            "the exception is in the worker's log.",
            ["task"],
        ),
    )


def task_started(task: Task) -> None:
    if not enabled():
        return
    _started.set(time.perf_counter())
    delivery = task.request.delivery_info or {}
    if delivery.get("redelivered") or getattr(task.request, "redelivered", False):
        instruments().redeliveries.labels(task.name).inc()


def task_ended(task: Task, args: Any, retval: Any, state: str | None) -> None:
    started = _started.get()
    if not enabled() or started is None:
        return
    _started.set(None)
    seconds = time.perf_counter() - started
    counters = instruments()
    counters.tasks.labels(task.name, state or "unknown").inc()
    if not isinstance(retval, dict) or not args:
        return
    if task.name == "hms.run_simulation":
        _run_ended(str(args[0]), str(retval.get("outcome", "unknown")), seconds)
    elif task.name == "hms.run_simulations":  # several runs: each with its own time
        for run in retval.get("runs", []):
            _run_ended(run["run_id"], str(run["outcome"]), float(run["seconds"]))


def _run_ended(run_id: str, outcome: str, seconds: float) -> None:
    counters = instruments()
    counters.runs.labels(outcome).inc()
    policies, tasks = run_shape(uuid.UUID(run_id))
    counters.run_duration.labels(policies, tasks, outcome).observe(seconds)


def task_retried(task: Task) -> None:
    if enabled():
        instruments().retries.labels(task.name).inc()


def task_failed(task: Task) -> None:
    if enabled():
        instruments().failures.labels(task.name).inc()


def run_shape(run_id: uuid.UUID) -> tuple[str, str]:
    """(number of policies, task-count bucket) of a run's spec: one primary-key read."""
    try:
        with session_scope() as session:
            row = session.execute(
                select(
                    func.jsonb_array_length(Run.spec["policies"]),
                    Run.spec["workload"]["num_tasks"].astext.cast(Integer),
                ).where(Run.id == run_id)
            ).one_or_none()
    except TransientStoreError:
        row = None
    if row is None:
        return "unknown", "unknown"
    policies, num_tasks = row
    return str(policies), task_bucket(num_tasks)


def task_bucket(num_tasks: int | None) -> str:
    if num_tasks is None:
        return "imported"
    for limit, label in TASK_BUCKETS:
        if num_tasks <= limit:
            return label
    return "more"
