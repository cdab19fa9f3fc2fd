"""Log lines of workers and beat: our format on Celery's handlers, and a log context per task
(request id from the message headers, task id, the run / study / job id, attempt).

The receivers are connected in workers/signals.py."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from app.runtime.logs import LogContext, set_context, use_format
from app.settings import get_settings

#: The message header that carries the API request's id to the worker (workers/queue.py).
REQUEST_ID_HEADER = "hms_request_id"

#: Which argument of a task is the id of what it works on, and what the log calls it.
_SUBJECT = {
    "hms.run_simulation": "run_id",
    "hms.retrain_model": "job_id",
    "hms.fan_out_study": "study_id",
}


def format_handlers(logger: logging.Logger) -> None:
    """Celery configured `logger`'s handlers (after_setup_logger / after_setup_task_logger):
    JSON lines when HMS_LOG_FORMAT=json, and the context on every line either way."""
    for handler in logger.handlers:
        use_format(handler, get_settings().log_format)


def header(task: Task, name: str) -> Any:
    """A custom message header: Celery merges them into the request, older brokers' messages
    keep them under `headers`."""
    value = getattr(task.request, name, None)
    if value is None:
        value = (getattr(task.request, "headers", None) or {}).get(name)
    return value


def task_context(task: Task, task_id: str, args: Any) -> LogContext:
    context = LogContext(
        request_id=header(task, REQUEST_ID_HEADER),
        task_id=task_id,
        task=task.name,
        attempt=(task.request.retries or 0) + 1,
    )
    subject = _SUBJECT.get(task.name)
    if subject and args:
        setattr(context, subject, str(args[0]))
    return context


def begin_task(task: Task, task_id: str, args: Any) -> LogContext:
    """task_prerun: the task's log lines carry its context until task_postrun."""
    context = task_context(task, task_id, args)
    set_context(context)
    return context


def end_task() -> None:
    set_context(None)
