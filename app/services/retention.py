"""Retention (celery beat, nightly at `retention_cron`): with HMS_RETENTION_DAYS set, delete
finished runs and studies older than that, with everything they recorded (results, schedules,
training samples), in batches of `retention_batch` rows per transaction so that no transaction
holds many locks or runs long. Running work is never touched; a run of a study goes with its
study. Off by default: nothing is deleted unless an operator asks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.db import runs as run_store
from app.db import studies as study_store
from app.db.models import utcnow
from app.db.session import session_scope
from app.settings import get_settings


@dataclass(frozen=True)
class RetentionReport:
    enabled: bool
    runs: int = 0  # lone runs deleted
    studies: int = 0  # studies deleted, each with its runs
    cutoff: datetime | None = None


def apply_retention() -> RetentionReport:
    settings = get_settings()
    if settings.retention_days <= 0:
        return RetentionReport(enabled=False)
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    batch = settings.retention_batch
    runs = _delete_in_batches(
        lambda session: run_store.expired_run_ids(session, cutoff, batch), run_store.delete_runs
    )
    studies = _delete_in_batches(
        lambda session: study_store.expired_study_ids(session, cutoff, batch),
        study_store.delete_studies,
    )
    return RetentionReport(enabled=True, runs=runs, studies=studies, cutoff=cutoff)


def _delete_in_batches(
    expired: Callable[[Session], list[uuid.UUID]],
    delete: Callable[[Session, Sequence[uuid.UUID]], None],
) -> int:
    """Delete what `expired` finds, one transaction per batch, until a batch comes back short."""
    batch_size = get_settings().retention_batch
    deleted = 0
    while True:
        with session_scope() as session:
            ids = expired(session)
            if ids:
                delete(session, ids)
        deleted += len(ids)
        if len(ids) < batch_size:
            return deleted
