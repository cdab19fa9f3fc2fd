"""OpenTelemetry tracing, off unless an OTLP endpoint is configured: the tracer the adapters
(api/tracing.py, workers/tracing.py) open their spans with, and one span per database statement.

The tracer is this module's own, not OpenTelemetry's global provider (which can be set only once
per process): off, `tracer()` is None and the adapters check that and do nothing else. The
database spans come from SQLAlchemy's cursor events on every engine, listened to only while
tracing is on; opentelemetry-instrumentation-sqlalchemy would do the same with wrapt and an
instrumentation framework, and declares itself for SQLAlchemy below 2.1.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import Engine, event

from app.settings import get_settings

#: Statement text kept on a span (characters). A batched insert repeats its VALUES group per row
#: (a 3-policy run's results: 1.5 kB; its training samples: one group per sample): past this,
#: the text only repeats itself.
STATEMENT_TEXT_MAX = 4096

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def tracer() -> Tracer | None:
    """The tracer to open spans with; None when tracing is off."""
    return _tracer


def configure_tracing(default_service_name: str) -> bool:
    """Export spans to the configured OTLP/HTTP endpoint (batched, in a background thread of this
    process). Says whether tracing is on; without an endpoint it stays off and installs nothing.
    A prefork worker calls this in each pool process: a thread does not survive fork."""
    if _tracer is not None:
        return True
    settings = get_settings()
    if not settings.otlp_endpoint:
        return False
    # Imported only here: the exporter pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    name = settings.otel_service_name or default_service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    install(provider)
    return True


def install(provider: TracerProvider) -> None:
    """Trace with `provider` from now on (tests pass one with an in-memory exporter)."""
    global _provider, _tracer
    _provider, _tracer = provider, provider.get_tracer("hms")
    if not event.contains(Engine, "before_cursor_execute", _statement_starts):
        event.listen(Engine, "before_cursor_execute", _statement_starts)
        event.listen(Engine, "after_cursor_execute", _statement_ends)
        event.listen(Engine, "handle_error", _statement_failed)


def flush() -> None:
    """Send the spans not exported yet, now (a process about to exit that atexit would miss)."""
    if _provider is not None:
        _provider.force_flush()


def shut_down() -> None:
    """Send the spans not exported yet and stop tracing (a pool process that exits, tests)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None
    if event.contains(Engine, "before_cursor_execute", _statement_starts):
        event.remove(Engine, "before_cursor_execute", _statement_starts)
        event.remove(Engine, "after_cursor_execute", _statement_ends)
        event.remove(Engine, "handle_error", _statement_failed)


def _statement_starts(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """A CLIENT span per statement, only inside a traced request or task (a statement nobody
    traced would be a trace of its own). The text is SQLAlchemy's, with placeholders: no values."""
    if _tracer is None or context is None:
        return
    if not trace.get_current_span().get_span_context().is_valid:
        return
    url = conn.engine.url
    operation = statement.split(None, 1)[0].upper() if statement.strip() else "SQL"
    attributes: dict[str, Any] = {
        "db.system.name": conn.dialect.name,
        "db.namespace": url.database or "",
        "db.operation.name": operation,
        "db.query.text": statement[:STATEMENT_TEXT_MAX],
    }
    if url.host:
        attributes["server.address"] = url.host
    if url.port:
        attributes["server.port"] = url.port
    context._hms_span = _tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)


def _statement_ends(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    span: Span | None = getattr(context, "_hms_span", None)
    if span is not None:
        span.end()
        context._hms_span = None


def _statement_failed(exception_context: Any) -> None:
    context = exception_context.execution_context
    span: Span | None = getattr(context, "_hms_span", None)
    if span is not None:
        error = exception_context.original_exception
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()
        context._hms_span = None
