"""Celery tasks: parse the message, call the service, translate errors into retry / no retry."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task

from app.errors import TransientStoreError
from app.services.runs import execute_run
from app.settings import get_settings
from workers.celery_app import app

_settings = get_settings()


class _CeleryProgress:
    """Publishes progress as the custom state PROGRESS (for AsyncResult) and as a
    `task-progress` event (for Flower)."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def __call__(self, progress: float, stage: str) -> None:
        meta = {"progress": round(progress, 4), "stage": stage}
        self.task.update_state(state="PROGRESS", meta=meta)
        self.task.send_event("task-progress", **meta)


@app.task(
    name="hms.run_simulation",
    bind=True,
    autoretry_for=(TransientStoreError,),
    retry_backoff=2,
    retry_backoff_max=_settings.retry_backoff_max_s,
    retry_jitter=True,
    max_retries=_settings.max_retries,
)
def run_simulation(self: Task, run_id: str) -> dict[str, Any]:
    outcome = execute_run(uuid.UUID(run_id), _CeleryProgress(self))
    return {"run_id": run_id, "outcome": outcome.value}
