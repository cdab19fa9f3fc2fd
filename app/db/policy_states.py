"""Versions of what learning policies (rl) learned, newest last."""

from __future__ import annotations

import uuid
from collections.abc import Callable
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
    session: Session,
    policy: str,
    next_state: Callable[[PolicyState | None], dict[str, Any]],
    run_id: uuid.UUID | None,
) -> int:
    """Store `next_state(newest)` as the next version, `newest` the latest version (None: none).

    Writers of one policy take turns: a transaction-scoped advisory lock keyed by the policy is
    held from reading the newest version until the commit, so a concurrent writer waits, then
    builds on this version, instead of computing the same version number and failing on
    uq_policy_states_policy_version (which cost it its whole transaction, or its update).
    A lock rather than an optimistic retry because the wait is short (the rest of one
    transaction) and the first save of a policy has no row to lock."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"policy_states:{policy}"))))
    newest = latest(session, policy)
    version = 1 if newest is None else newest.version + 1
    state = next_state(newest)
    session.add(PolicyState(policy=policy, version=version, state=state, run_id=run_id))
    return version
