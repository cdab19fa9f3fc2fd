"""Worker lifecycle hooks, and the logging, metrics and tracing adapters' receivers
(workers/logs.py, workers/metrics.py, workers/tracing.py)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery.exceptions import TimeLimitExceeded
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)
from threadpoolctl import threadpool_limits

from app.db.session import dispose_engines, prepare_before_fork
from app.ml.bootstrap import bootstrap_model
from app.runtime.memory import cap_memory, peak_resident_mb
from app.runtime.threads import available_cores, limit_native_threads
from app.runtime.tracing import shut_down as shut_down_tracing
from app.services import studies
from app.services.runs import end_shared_message, fail_run, out_of_memory
from app.services.training import fail_job
from app.settings import get_settings
from app.sim.engine import warm_up
from workers import logs, metrics, tracing
from workers import task_names as names
from workers.queue import CeleryQueue

log = logging.getLogger(__name__)

#: How many pool processes share the cores (set in the main process, inherited by the pool).
_pool_processes = 1
#: This process's peak resident memory (MB) when its current task started.
_peak_before_task_mb = 0.0
#: The smallest rise of a pool process's peak that a task logs (MB): smaller ones are noise.
PEAK_RISE_LOGGED_MB = 1.0


@worker_init.connect
def _prepare_before_fork(sender: Any = None, **_: Any) -> None:
    """Compile the simulator's loop, load the bootstrap model (training and caching it on a
    fresh machine) and prepare the database's engine (app/db/session.py) once, in the main
    process: the pool processes it forks inherit them, and no task waits for them. Training
    runs on one OpenMP thread because GNU OpenMP does not survive fork: a pool process whose
    parent ever ran a multi-threaded region hangs at its first one."""
    global _pool_processes
    concurrency = getattr(sender, "concurrency", None)
    # `--concurrency auto` is resolved after this signal, to the cores: one process per core.
    _pool_processes = concurrency if isinstance(concurrency, int) else available_cores()
    metrics.prepare(getattr(sender, "hostname", None) or "worker")
    warm_up()
    prepare_before_fork()
    with threadpool_limits(limits=1):
        bootstrap_model()


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """A forked pool process must not share its parent's pooled database connections, and its
    native threads x the pool's processes must not exceed the cores (app/runtime/threads.py), and
    a run may use no more than its memory budget (app/runtime/memory.py).
    Tracing starts here, in each pool process: its exporter's thread would not survive the fork."""
    dispose_engines()
    limit_native_threads(_pool_processes)
    tracing.configure_worker_tracing()
    cap_memory()  # last: what the process set up is its footprint, not the run's budget


@task_failure.connect
def _record_hard_time_limit(
    sender: Any = None, exception: Any = None, args: Any = None, **_: Any
) -> None:
    """A task past its hard time limit was killed with its pool process, so it could not record
    anything: its run (or retrain) is failed here, in the worker's main process, and the message
    is acknowledged (task_acks_on_failure_or_timeout), not run again."""
    if not isinstance(exception, TimeLimitExceeded) or not args:
        return
    reason = f"killed at the hard time limit of {get_settings().task_time_limit_s} s"
    if sender.name == names.RUN_SIMULATION:
        fail_run(uuid.UUID(args[0]), reason)
        studies.after_run_ended(uuid.UUID(args[0]))  # the last run of a study aggregates it
    elif sender.name == names.RUN_SIMULATIONS:
        end_shared_message(_run_ids(args), reason, CeleryQueue(), int(args[1]))
    elif sender.name == "hms.retrain_model":
        fail_job(uuid.UUID(args[0]), reason)


@task_failure.connect
def _record_out_of_memory(
    sender: Any = None, exception: Any = None, args: Any = None, **_: Any
) -> None:
    """A run whose MemoryError escaped execute_run (while its results were written) is failed
    here, once, instead of being left running for the recovery sweep to send again."""
    if not isinstance(exception, MemoryError) or not args:
        return
    if sender.name == names.RUN_SIMULATION:
        fail_run(uuid.UUID(args[0]), out_of_memory())
        studies.after_run_ended(uuid.UUID(args[0]))
    elif sender.name == names.RUN_SIMULATIONS:
        end_shared_message(_run_ids(args), out_of_memory(), CeleryQueue(), int(args[1]))


def _run_ids(args: Any) -> list[uuid.UUID]:
    """The runs of a message of several (workers/tasks.run_simulations)."""
    return [uuid.UUID(run_id) for run_id in args[0]]


@worker_ready.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    app = sender.app
    metrics.serve(sorted(name for name in app.tasks if name.startswith("hms.")))


@worker_process_shutdown.connect
def _pool_process_exits(**_: Any) -> None:
    metrics.process_exited()
    shut_down_tracing()  # sends the spans still batched


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger: Any = None, **_: Any) -> None:
    """Workers and beat: JSON lines with HMS_LOG_FORMAT=json, the task's context either way."""
    logs.format_handlers(logger)


@task_prerun.connect
def _task_starts(sender: Any = None, task_id: str = "", args: Any = None, **_: Any) -> None:
    global _peak_before_task_mb
    _peak_before_task_mb = peak_resident_mb()
    context = logs.begin_task(sender, task_id, args)
    tracing.begin_task(sender, task_id, context)
    metrics.task_started(sender)


@task_postrun.connect
def _task_ends(
    sender: Any = None,
    task_id: str = "",
    args: Any = None,
    retval: Any = None,
    state: Any = None,
    **_: Any,
) -> None:
    metrics.task_ended(sender, args, retval, state)
    tracing.end_task(task_id, state)
    _log_peak_memory_rise(sender)
    logs.end_task()


def _log_peak_memory_rise(task: Any) -> None:
    """A task that raised its process's peak resident memory (by PEAK_RISE_LOGGED_MB or more)
    says so, with the task's context: a pool process's peak (which the kernel keeps for its
    whole life) is then traced to the task that set it."""
    peak_mb = peak_resident_mb()
    if peak_mb - _peak_before_task_mb >= PEAK_RISE_LOGGED_MB:
        log.info(
            "%s raised this process's peak memory from %.1f to %.1f MiB",
            getattr(task, "name", task),
            _peak_before_task_mb,
            peak_mb,
        )


@task_retry.connect
def _task_retries(sender: Any = None, **_: Any) -> None:
    metrics.task_retried(sender)


@task_failure.connect
def _count_failure(sender: Any = None, task_id: str = "", exception: Any = None, **_: Any) -> None:
    metrics.task_failed(sender)
    tracing.task_failed(task_id, exception)
