"""Celery tasks: parse the message, call the service, translate errors into retry / no retry."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from app.errors import TransientStoreError
from app.services.runs import execute_run
from app.settings import get_settings
from workers.celery_app import app

_settings = get_settings()
log = get_task_logger(__name__)


class _CeleryProgress:
    """Publishes progress as the custom state PROGRESS (for AsyncResult) and as a
    `task-progress` event (for Flower)."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def __call__(self, progress: float, stage: str) -> None:
        meta = {"progress": round(progress, 4), "stage": stage}
        try:
            self.task.update_state(state="PROGRESS", meta=meta)
            self.task.send_event("task-progress", **meta)
        except (BrokerError, RedisError, OSError):
            # Monitoring only: the run's progress is already in the database.
            log.warning("could not publish progress of %s", self.task.request.id, exc_info=True)


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
