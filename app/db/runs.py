"""Query functions for runs and their results. They take the caller's session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.db.models import Run, RunResult, RunStatus, utcnow


def add_run(
    session: Session,
    *,
    spec: dict[str, Any],
    priority: int,
    idempotency_key: str | None,
    request_digest: str,
) -> Run:
    run = Run(
        id=uuid.uuid4(),
        status=RunStatus.QUEUED,
        spec=spec,
        priority=priority,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        progress=0.0,
        attempts=0,
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: uuid.UUID, *, lock: bool = False) -> Run | None:
    return session.get(Run, run_id, with_for_update=lock)


def get_run_by_idempotency_key(session: Session, key: str) -> Run | None:
    return session.scalars(select(Run).where(Run.idempotency_key == key)).one_or_none()


def list_runs(
    session: Session, *, status: RunStatus | None, limit: int, offset: int
) -> tuple[list[Run], int]:
    """A page of runs, newest first, and how many runs match in total."""
    where = [] if status is None else [Run.status == status]
    total = session.scalar(select(func.count()).select_from(Run).where(*where)) or 0
    page = session.scalars(
        select(Run)
        .where(*where)
        .order_by(Run.created_at.desc(), Run.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(page), total


def set_progress(session: Session, run_id: uuid.UUID, progress: float) -> str | None:
    """Record progress of a running run; returns the run's status (None if it does not exist).

    Only a run still `running` is touched, so a cancelled run is never revived."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.RUNNING)
        .values(progress=progress)
    )
    return session.scalar(select(Run.status).where(Run.id == run_id))


def add_results(session: Session, run_id: uuid.UUID, rows: Iterable[dict[str, Any]]) -> None:
    session.add_all(RunResult(run_id=run_id, **row) for row in rows)


def results_of(session: Session, run_id: uuid.UUID) -> list[RunResult]:
    return list(
        session.scalars(
            select(RunResult).where(RunResult.run_id == run_id).order_by(RunResult.makespan)
        ).all()
    )


def mark_enqueued(session: Session, run_id: uuid.UUID) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(enqueued_at=utcnow()))


def stuck_runs(
    session: Session, *, unsent_before: datetime, queued_before: datetime, silent_before: datetime
) -> list[Run]:
    """Runs the recovery sweep sends again: queued and never sent (a crash between commit and
    enqueue), queued and sent long ago (the message may be lost), running but silent."""
    return list(
        session.scalars(
            select(Run).where(
                or_(
                    and_(
                        Run.status == RunStatus.QUEUED,
                        Run.enqueued_at.is_(None),
                        Run.created_at < unsent_before,
                    ),
                    and_(Run.status == RunStatus.QUEUED, Run.enqueued_at < queued_before),
                    and_(Run.status == RunStatus.RUNNING, Run.updated_at < silent_before),
                )
            )
        )
    )
