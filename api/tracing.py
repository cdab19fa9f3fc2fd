"""The API's spans: one SERVER span per request, named by its route template, the parent of what
the request does (its database statements, the messages it publishes: app/runtime/tracing.py,
workers/tracing.py). Installed by create_app only when tracing is on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.telemetry import route_template
from app.runtime.logs import current_context
from app.runtime.tracing import configure_tracing, flush, tracer


def configure_api_tracing() -> bool:
    """Whether the API traces (HMS_OTLP_ENDPOINT, or a provider a test installed)."""
    return configure_tracing("hms-api")


@asynccontextmanager
async def flush_spans_at_shutdown(app: Any) -> AsyncIterator[None]:
    """The app's lifespan when tracing: uvicorn re-raises the SIGTERM it shut down for, so the
    exporter's atexit flush never runs; the batch goes out here instead."""
    yield
    flush()


def _carrier(scope: Scope) -> dict[str, str]:
    """The request's headers a propagator reads (a client's own `traceparent` continues its
    trace)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


class RequestTracing:
    """Inside RequestTelemetry, so the request's log context (its id, its tenant once
    `note_tenant` ran) is bound around it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        active = tracer()
        if scope["type"] != "http" or active is None:
            await self.app(scope, receive, send)
            return
        await self._traced(active, scope, receive, send)

    async def _traced(self, active: Tracer, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        status_code = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        parent = propagate.extract(_carrier(scope))
        with active.start_as_current_span(
            f"{method} {scope['path']}",  # renamed to the route's template once it is known
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_request_attributes(scope),
            set_status_on_exception=False,  # the status follows the answer's code, below
        ) as span:
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status_code)
                if status_code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                log_context = current_context()
                if log_context is not None:
                    if log_context.request_id:
                        span.set_attribute("hms.request_id", log_context.request_id)
                    if log_context.tenant:
                        span.set_attribute("hms.tenant", log_context.tenant)


def _request_attributes(scope: Scope) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    server = scope.get("server")
    if server:
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    for name, value in scope["headers"]:
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
    return attributes
