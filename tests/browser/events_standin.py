"""A stand-in for the API's event streams, for the browser tests only, until the branch that
builds them (GET /api/v1/runs/{id}/events, /api/v1/studies/{id}/events) is merged: the API app
plus these two routes, speaking the streams' contract (`id:`, `event: state`, `data:` JSON; the
current state on connect; the stream ends after a terminal state) by reading the services every
0.2 s. conftest.py serves this app only when api.main's app has no such routes.

Delete this module once the real streams are merged.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import Caller
from api.main import app
from app.services import runs, studies

POLL_S = 0.2


def has_event_routes() -> bool:
    paths = app.openapi()["paths"]
    return "/api/v1/runs/{run_id}/events" in paths or "/api/v1/runs/{id}/events" in paths


def _run_state(tenant: Any, run_id: uuid.UUID) -> tuple[dict[str, Any], bool]:
    run = runs.get_run(tenant, run_id)
    document = {
        "id": str(run.id),
        "status": run.status,
        "progress": run.progress,
        "attempts": run.attempts,
        "error": run.error,
        "updated_at": run.updated_at.isoformat(),
    }
    return document, run.status in ("succeeded", "failed", "cancelled")


def _study_state(tenant: Any, study_id: uuid.UUID) -> tuple[dict[str, Any], bool]:
    view = studies.get_study(tenant, study_id)
    document = {
        "id": str(view.study.id),
        "status": view.study.status,
        "progress": view.progress,
        "total_runs": view.study.total_runs,
        "finished_runs": view.finished_runs,
        "counts": view.counts,
        "updated_at": view.study.updated_at.isoformat(),
    }
    return document, view.study.status in ("succeeded", "cancelled")


async def _events(read: Callable[[], tuple[dict[str, Any], bool]]) -> AsyncIterator[str]:
    last, number = None, 0
    while True:
        document, terminal = await run_in_threadpool(read)
        if document != last:
            number += 1
            last = document
            yield f"id: {number}\nevent: state\ndata: {json.dumps(document)}\n\n"
        if terminal:
            return
        await asyncio.sleep(POLL_S)


if not has_event_routes():

    @app.get("/api/v1/runs/{run_id}/events", include_in_schema=False)
    def run_events(run_id: uuid.UUID, tenant: Caller) -> StreamingResponse:
        _run_state(tenant, run_id)  # a 404 before the stream starts
        stream = _events(lambda: _run_state(tenant, run_id))
        return StreamingResponse(stream, media_type="text/event-stream")

    @app.get("/api/v1/studies/{study_id}/events", include_in_schema=False)
    def study_events(study_id: uuid.UUID, tenant: Caller) -> StreamingResponse:
        _study_state(tenant, study_id)
        stream = _events(lambda: _study_state(tenant, study_id))
        return StreamingResponse(stream, media_type="text/event-stream")
