"""Query functions for runs and their results. They take the caller's session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Run, RunResult, RunStatus


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
    session: Session,
    *,
    status: RunStatus | None,
    limit: int,
    offset: int,
    study_id: uuid.UUID | None = None,
) -> tuple[list[Run], int]:
    """A page of runs, newest first, and how many runs match in total."""
    where = [] if status is None else [Run.status == status]
    if study_id is not None:
        where.append(Run.study_id == study_id)
    total = session.scalar(select(func.count()).select_from(Run).where(*where)) or 0
    page = session.scalars(
        select(Run)
        .where(*where)
        .order_by(Run.created_at.desc(), Run.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(page), total


#: Keys of a result document that are not stored per result: the run keeps `rank_by`, and
#: `rank_value` is the result's own column named by it.
DERIVED_RESULT_KEYS = frozenset({"rank_by", "rank_value"})


def add_results(session: Session, run_id: uuid.UUID, rows: Iterable[dict[str, Any]]) -> None:
    """Store result documents (`services.simulation.result_documents`); any key other than the
    derived ones must be a column, so a new metric is not silently dropped."""
    session.add_all(
        RunResult(run_id=run_id, **{k: v for k, v in row.items() if k not in DERIVED_RESULT_KEYS})
        for row in rows
    )


def results_of(session: Session, run_id: uuid.UUID) -> list[RunResult]:
    """A run's results, best first: by rank, then makespan (results recorded before runs were
    ranked have no rank, and come in makespan order)."""
    return list(
        session.scalars(
            select(RunResult)
            .where(RunResult.run_id == run_id)
            .order_by(RunResult.rank.asc().nulls_last(), RunResult.makespan, RunResult.policy)
        ).all()
    )
