"""Queries shared by the work workers execute (runs, retraining jobs; models.Attempted)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import Attempted, utcnow

T = TypeVar("T", bound=Attempted)


def stuck(
    session: Session,
    model: type[T],
    *,
    unsent_before: datetime,
    queued_before: datetime,
    silent_before: datetime,
) -> list[T]:
    """The rows the recovery sweep sends again (Attempted.stuck)."""
    clause = model.stuck(unsent_before, queued_before, silent_before)
    return list(session.scalars(select(model).where(clause)))


def mark_enqueued(session: Session, model: type[Attempted], row_id: uuid.UUID) -> None:
    """Its message was just sent."""
    session.execute(update(model).where(model.id == row_id).values(enqueued_at=utcnow()))
