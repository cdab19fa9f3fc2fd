"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI

from api import docs_pages, metrics
from api.errors import install_error_handlers
from api.json_body import refuse_unstorable_values
from api.limits import BodySizeLimit
from api.live import live_changes
from api.routes import (
    events,
    health,
    keys,
    models,
    perf_models,
    policies,
    profiles,
    runs,
    studies,
)
from api.telemetry import RequestTelemetry, configure_api_logging, note_tenant
from api.tracing import RequestTracing, configure_api_tracing, flush_spans_at_shutdown
from api.web import install as install_dashboard
from app.settings import get_settings

log = logging.getLogger(__name__)


def create_app() -> FastAPI:
    settings = get_settings()
    configure_api_logging(settings.log_format, settings.log_level)
    traced = configure_api_tracing()
    app = FastAPI(
        title="Hybrid ML Scheduler",
        version="0.1.0",
        description="Submit simulation runs that compare placement policies on CPU/GPU clusters.",
        lifespan=_lifespan(traced),
        docs_url=None,  # /docs and /redoc come from docs_pages, without a CDN
        redoc_url=None,
    )
    # Log lines name the key's tenant; then (after auth) a body's NaN, NUL or lone surrogate is
    # a 422 before pydantic reads it.
    with_tenant = [Depends(note_tenant), Depends(refuse_unstorable_values)]
    api_routers = (
        runs.router,
        studies.router,
        events.router,
        policies.router,
        models.router,
        perf_models.router,
        profiles.router,
    )
    for router in (*api_routers, keys.router):
        app.include_router(router, dependencies=with_tenant)
    app.include_router(health.router)
    app.include_router(metrics.router)
    docs_pages.install(app)
    install_dashboard(app)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if traced:
        app.add_middleware(RequestTracing)  # inside RequestTelemetry: the log context is bound
    app.state.metrics_registry, http_metrics = metrics.api_registry()
    app.add_middleware(RequestTelemetry, metrics=http_metrics)  # outermost: sees every answer
    if not settings.bootstrap_keys:
        log.warning(
            "HMS_API_KEYS is empty: only keys made with `hms keys create` are accepted, and "
            "creating one needs an admin key"
        )
    return app


def _lifespan(traced: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """While the app serves, the database's change notifications wake live streams
    (api/live.py); with tracing, the spans' last batch goes out at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if traced:
                await stack.enter_async_context(flush_spans_at_shutdown(app))
            await stack.enter_async_context(live_changes.listened())
            yield

    return lifespan


app = create_app()
