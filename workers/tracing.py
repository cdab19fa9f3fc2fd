"""The workers' spans: a PRODUCER span around each message sent (workers/queue.py), whose
context travels in the message's headers (W3C `traceparent`, beside the request id), and a
CONSUMER span per task executed, continued from those headers, the parent of the task's
database statements and of the messages it sends. Off (no span, no header) unless tracing is
on; the receivers are connected in workers/signals.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Token
from typing import Any

from celery import Task
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from app.runtime.logs import LogContext
from app.runtime.tracing import configure_tracing, tracer
from workers.logs import header

#: The spans of the tasks executing in this process, by task id, and the token that restores
#: the context the task started in.
_open: dict[str, tuple[Span, Token[Context]]] = {}


def configure_worker_tracing() -> bool:
    """Whether this process traces (HMS_OTLP_ENDPOINT); called in each pool process."""
    return configure_tracing("hms-worker")


@contextmanager
def publishing(
    task: str, queue: str, task_id: str | None, headers: dict[str, str]
) -> Iterator[dict[str, str]]:
    """A PRODUCER span around sending one message of `task`; yields `headers` plus the span's
    context to send with it (just `headers` when tracing is off)."""
    active = tracer()
    if active is None:
        yield headers
        return
    attributes = {
        "messaging.system": "celery",
        "messaging.operation.type": "send",
        "messaging.destination.name": queue,
        "celery.task_name": task,
    }
    if task_id:
        attributes["messaging.message.id"] = task_id
    with active.start_as_current_span(
        f"send {task}", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        carried = dict(headers)
        propagate.inject(carried)
        yield carried


def begin_task(task: Task, task_id: str, context: LogContext) -> None:
    """task_prerun: a CONSUMER span continued from the message's headers, current until
    task_postrun; its attributes are the task's log context (run id, task id, attempt, ...)."""
    active = tracer()
    if active is None:
        return
    carrier = {
        field: str(value)
        for field in propagate.get_global_textmap().fields
        if (value := header(task, field)) is not None
    }
    attributes: dict[str, Any] = {
        "messaging.system": "celery",
        "messaging.operation.type": "process",
        "celery.task_name": task.name,
        "messaging.message.id": task_id,
        **{f"hms.{key}": value for key, value in context.fields().items()},
    }
    queue = (task.request.delivery_info or {}).get("routing_key")
    if queue:
        attributes["messaging.destination.name"] = queue
    span = active.start_span(
        f"process {task.name}",
        context=propagate.extract(carrier),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )
    _open[task_id] = (span, otel_context.attach(trace.set_span_in_context(span)))


def task_failed(task_id: str, exception: BaseException | None) -> None:
    """task_failure (before task_postrun): the span records what the task raised."""
    opened = _open.get(task_id)
    if opened is not None and exception is not None:
        opened[0].record_exception(exception)


def end_task(task_id: str, state: str | None) -> None:
    """task_postrun: end the task's span with Celery's final state for this attempt."""
    opened = _open.pop(task_id, None)
    if opened is None:
        return
    span, token = opened
    span.set_attribute("celery.state", state or "unknown")
    if state == "FAILURE":
        span.set_status(Status(StatusCode.ERROR))
    otel_context.detach(token)
    span.end()
