"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import health, models, policies, runs


def create_app() -> FastAPI:
    app = FastAPI(
        title="Hybrid ML Scheduler",
        version="0.1.0",
        description="Submit simulation runs that compare placement policies on CPU/GPU clusters.",
    )
    app.include_router(runs.router)
    app.include_router(policies.router)
    app.include_router(models.router)
    app.include_router(health.router)
    install_error_handlers(app)
    return app


app = create_app()
