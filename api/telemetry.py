"""Per-request telemetry, as one ASGI middleware: the request id (`X-Request-ID`, accepted if
sane, else generated; returned on every answer), the log context every line of the request
carries, one access log line, and the request metrics labelled by route template."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Annotated

from fastapi import Depends
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import current_tenant
from api.metrics import UNMATCHED, HttpMetrics
from app.runtime.logs import LogContext, LogFormat, bound, configure_logging, current_context
from app.tenancy import Tenant

access_log = logging.getLogger("api.access")

REQUEST_ID_HEADER = "X-Request-ID"
#: What a client's request id may look like: anything else is replaced by a generated one (it
#: ends up in log lines and message headers, so no spaces, quotes or control characters).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
_HEADER = REQUEST_ID_HEADER.lower().encode()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if it is sane, else a new one (32 hex digits)."""
    for name, value in headers:
        if name == _HEADER:
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path format (`/api/v1/runs/{run_id}`), not the raw path."""
    route = scope.get("route")
    path_format = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path_format if isinstance(path_format, str) else UNMATCHED


class RequestTelemetry:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        status_code = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_code = message["status"]
                headers = [*message.get("headers", []), (_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        with bound(LogContext(request_id=request_id)):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # Answered here rather than by Starlette's outermost handler, so that the 500
                # carries the request id and the log line its context.
                access_log.exception("unhandled error")
                if response_started:
                    raise
                error = JSONResponse({"detail": "Internal Server Error"}, status_code=500)
                await error(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                route = route_template(scope)
                self.metrics.observe(scope["method"], route, status_code, seconds)
                access_log.info(
                    "%s %s %d %.1f ms",
                    scope["method"], scope["path"], status_code, seconds * 1000,
                    extra={"route": route, "status": status_code,
                           "duration_ms": round(seconds * 1000, 3)},
                )  # fmt: skip


def note_tenant(tenant: Annotated[Tenant, Depends(current_tenant)]) -> None:
    """A router dependency: the request's log lines name its tenant from here on. FastAPI
    resolves `current_tenant` once per request, so this costs no second key lookup."""
    context = current_context()
    if context is not None:
        context.tenant = tenant.name


def configure_api_logging(log_format: LogFormat, level: str) -> None:
    """Our format on the root logger (unless someone else configured it); uvicorn's loggers then
    write through it, and its access log gives way to api.access's line, which has the request
    id, route template and tenant."""
    if not configure_logging(log_format, level):
        return
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
