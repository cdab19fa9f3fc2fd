"""Log lines that say which request, tenant, run and task they belong to: plain `logging` only.

The adapters fill one `LogContext` per HTTP request (api/telemetry.py) and per Celery task
(workers/logs.py) and bind it to a context variable; `ContextFilter` copies its fields onto every
record a handler emits, and the formatters write them as JSON fields or a `[key=value]` suffix.
The domain logs as before and knows nothing of this.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]


@dataclass
class LogContext:
    """What a log line is about. One object per request or task: a request's dependency may fill
    in `tenant` after the middleware bound it (worker threads share the object, not the var)."""

    request_id: str | None = None
    tenant: str | None = None
    run_id: str | None = None
    study_id: str | None = None
    job_id: str | None = None
    task_id: str | None = None
    task: str | None = None
    attempt: int | None = None

    def fields(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


_current: ContextVar[LogContext | None] = ContextVar("hms_log_context", default=None)


def current_context() -> LogContext | None:
    return _current.get()


def current_request_id() -> str | None:
    context = _current.get()
    return context.request_id if context is not None else None


@contextmanager
def bound(context: LogContext) -> Iterator[LogContext]:
    """Log lines within the block carry `context`'s fields."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def set_context(context: LogContext | None) -> None:
    """For callers whose start and end are two callbacks (Celery's task_prerun / task_postrun,
    one task at a time per process): bind `context`, or None to clear it."""
    _current.set(context)


#: The record attributes ContextFilter sets; TextFormatter prints them in this order.
CONTEXT_FIELDS = tuple(LogContext.__dataclass_fields__)


class ContextFilter(logging.Filter):
    """Copies the bound context's fields onto each record (on a handler: every record it emits,
    whichever logger it came from)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None:
            for key, value in context.fields().items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class TextFormatter(logging.Formatter):
    """Human-readable: `time LEVEL logger: message [request_id=... run_id=...]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if hasattr(record, key)
        )
        if not context:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the context
        return f"{first} [{context}]{newline}{rest}"


def json_formatter() -> logging.Formatter:
    """One JSON object per line: level, time (ISO 8601, UTC), logger, message, then the context
    fields and any `extra` the caller passed (exc_info as a `exc_info` string), except uvicorn's
    coloured duplicate of the message."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        # uvicorn's copy of each message with terminal colour codes, for its own formatter
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        timestamp="time",
        json_ensure_ascii=False,
    )


def formatter(log_format: LogFormat) -> logging.Formatter:
    return json_formatter() if log_format == "json" else TextFormatter()


def use_format(handler: logging.Handler, log_format: LogFormat) -> None:
    """Make a handler someone else created (Celery's) write our format and the context."""
    if log_format == "json":
        handler.setFormatter(json_formatter())
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())


def configure_logging(log_format: LogFormat, level: str | int = "INFO") -> bool:
    """The root logger writes `log_format` lines with the context to stderr. Does nothing (and
    says False) when the root logger already has handlers: whoever installed them (a test
    runner, a host process) owns logging."""
    root = logging.getLogger()
    if root.handlers:
        return False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    return True
