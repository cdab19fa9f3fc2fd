"""Worker lifecycle hooks."""

from __future__ import annotations

import uuid
from typing import Any

from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure, worker_init, worker_process_init

from app.db.session import dispose_engines
from app.services.runs import fail_run
from app.services.training import fail_job
from app.settings import get_settings
from app.sim.engine import warm_up


@worker_init.connect
def _compile_the_engine(**_: Any) -> None:
    """Compile the simulator's loop once, in the main process: the pool processes it forks
    inherit it, and no run waits for the compiler."""
    warm_up()


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    """A forked pool process must not share its parent's pooled database connections."""
    dispose_engines()


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
    if sender.name == "hms.run_simulation":
        fail_run(uuid.UUID(args[0]), reason)
    elif sender.name == "hms.retrain_model":
        fail_job(uuid.UUID(args[0]), reason)
