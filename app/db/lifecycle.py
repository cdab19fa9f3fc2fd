"""Queries shared by the work workers execute (runs, retraining jobs, studies; models.Work).
They take the caller's session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from app.db.models import QUEUED, RUNNING, Attempted, Work, utcnow
from app.errors import ClaimLost

W = TypeVar("W", bound=Work)
A = TypeVar("A", bound=Attempted)


def lock(session: Session, model: type[W], row_id: uuid.UUID) -> W | None:
    """The row, locked until the transaction ends (None if it does not exist)."""
    return session.get(model, row_id, with_for_update=True)


def lock_running(session: Session, model: type[W], row_id: uuid.UUID) -> W | None:
    """The row, locked, if it is still running; None if it is gone or already ended (cancelled,
    or finished by another delivery of the same message). Raises ClaimLost if it is queued: the
    claim that made it running was lost."""
    row = lock(session, model, row_id)
    if row is not None and row.status == QUEUED:
        raise ClaimLost(row_id)
    return row if row is not None and row.status == RUNNING else None


def set_progress(
    session: Session, model: type[Attempted], row_id: uuid.UUID, progress: float, phase: str
) -> str | None:
    """Record progress of running work and the phase it is in; returns its status (None if it
    does not exist).

    Only a row still `running` is touched, so ended work is never revived. One round trip
    while it runs (the update returns the status); a second, to read the status, once it does
    not."""
    running = session.scalar(
        update(model)
        .where(model.id == row_id, model.status == RUNNING)
        .values(progress=progress, phase=phase)
        .returning(model.status)
    )
    return running or session.scalar(select(model.status).where(model.id == row_id))


def awaiting_messages(session: Session, *models: type[Attempted]) -> int:
    """How many rows of `models` the broker should hold a message for
    (Attempted.awaiting_message)."""
    return sum(
        session.scalar(select(func.count()).select_from(model).where(model.awaiting_message())) or 0
        for model in models
    )


def stuck(
    session: Session,
    model: type[A],
    unless: ColumnElement[bool] | None = None,
    /,
    *,
    unsent_before: datetime,
    queued_before: datetime | None,
    silent_before: datetime,
) -> list[A]:
    """The rows the recovery sweep sends again (Attempted.stuck), but those `unless` holds for."""
    clause = model.stuck(unsent_before, queued_before, silent_before)
    if unless is not None:
        clause = and_(clause, ~unless)
    return list(session.scalars(select(model).where(clause)))


def mark_enqueued(session: Session, model: type[Work], row_ids: Sequence[uuid.UUID]) -> None:
    """Their messages were just sent."""
    session.execute(update(model).where(model.id.in_(row_ids)).values(enqueued_at=utcnow()))
