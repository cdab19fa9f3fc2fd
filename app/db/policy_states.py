"""Versions of what learning policies (rl) learned, newest last."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import PolicyState


def latest(session: Session, policy: str) -> PolicyState | None:
    return session.scalars(
        select(PolicyState)
        .where(PolicyState.policy == policy)
        .order_by(PolicyState.version.desc())
        .limit(1)
    ).one_or_none()


def add_version(
    session: Session, policy: str, state: dict[str, Any], run_id: uuid.UUID | None
) -> int:
    """Store `state` as the next version (two concurrent writers: the unique key makes one fail
    and its transaction retry)."""
    current = session.scalar(
        select(func.max(PolicyState.version)).where(PolicyState.policy == policy)
    )
    version = (current or 0) + 1
    session.add(PolicyState(policy=policy, version=version, state=state, run_id=run_id))
    return version
