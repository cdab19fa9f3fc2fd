"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.routes import events, health, keys, models, policies, runs, studies
from api.web import install as install_dashboard
from app.settings import get_settings

log = logging.getLogger(__name__)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Hybrid ML Scheduler",
        version="0.1.0",
        description="Submit simulation runs that compare placement policies on CPU/GPU clusters.",
    )
    app.include_router(runs.router)
    app.include_router(studies.router)
    app.include_router(events.router)
    app.include_router(policies.router)
    app.include_router(models.router)
    app.include_router(keys.router)
    app.include_router(health.router)
    install_dashboard(app)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
    if not get_settings().bootstrap_keys:
        log.warning(
            "HMS_API_KEYS is empty: only keys made with `hms keys create` are accepted, and "
            "creating one needs an admin key"
        )
    return app


app = create_app()
