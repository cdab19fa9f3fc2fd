"""Query functions for runs and their results. They take the caller's session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.db.models import (
    KernelObservationSet,
    Run,
    RunResult,
    RunStatus,
    Study,
    TrainingSampleSet,
)
from app.db.scope import get_visible, visible_to
from app.tenancy import Tenant


def add_run(
    session: Session,
    *,
    spec: dict[str, Any],
    priority: int,
    tenant: str,
    idempotency_key: str | None,
    request_digest: str,
) -> Run:
    run = Run(
        id=uuid.uuid4(),
        status=RunStatus.QUEUED,
        spec=spec,
        priority=priority,
        tenant=tenant,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        progress=0.0,
        attempts=0,
    )
    session.add(run)
    session.flush()
    return run


def get_run(
    session: Session, run_id: uuid.UUID, *, lock: bool = False, tenant: Tenant | None = None
) -> Run | None:
    """The run; with `tenant`, only if that tenant may see it (None: a worker's own lookup)."""
    return get_visible(session, Run, run_id, lock=lock, tenant=tenant)


def get_run_by_idempotency_key(session: Session, tenant: str, key: str) -> Run | None:
    query = select(Run).where(Run.tenant == tenant, Run.idempotency_key == key)
    return session.scalars(query).one_or_none()


#: The study filter of `list_runs` that keeps the runs of no study (lone runs).
NO_STUDY: Literal["none"] = "none"
#: Which runs `list_runs` keeps: a study's, NO_STUDY's (lone runs), or (None) all.
StudyFilter = uuid.UUID | Literal["none"] | None


def list_runs(
    session: Session,
    tenant: Tenant,
    *,
    status: RunStatus | None,
    limit: int,
    offset: int,
    study_id: StudyFilter = None,
) -> tuple[list[Run], int]:
    """A page of the runs `tenant` may see, newest first, and how many match in total."""
    where = [visible_to(Run, tenant)]
    if status is not None:
        where.append(Run.status == status)
    if study_id == NO_STUDY:
        where.append(Run.study_id.is_(None))
    elif study_id is not None:
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


def study_names(
    session: Session, tenant: Tenant, study_ids: Collection[uuid.UUID], newest: int
) -> dict[uuid.UUID, str]:
    """The names of the studies `study_ids` and of the `newest` studies, those `tenant` may see,
    newest first: what a list of runs names its runs' studies by and offers to filter by."""
    latest = (
        select(Study.id)
        .where(visible_to(Study, tenant))
        .order_by(Study.created_at.desc())
        .limit(newest)
    )
    rows = session.execute(
        select(Study.id, Study.name)
        .where(visible_to(Study, tenant), or_(Study.id.in_(study_ids), Study.id.in_(latest)))
        .order_by(Study.created_at.desc(), Study.id)
    )
    return {row.id: row.name for row in rows}


#: Keys of a result document that are not stored per result: the run keeps `rank_by`, and
#: `rank_value` is the result's own column named by it.
DERIVED_RESULT_KEYS = frozenset({"rank_by", "rank_value"})


def statuses(
    session: Session, run_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, uuid.UUID | None]]:
    """Each existing run's status and study (None: a lone run)."""
    rows = session.execute(select(Run.id, Run.status, Run.study_id).where(Run.id.in_(run_ids)))
    return {run_id: (status, study_id) for run_id, status, study_id in rows}


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


def delete_runs(session: Session, run_ids: Sequence[uuid.UUID]) -> None:
    """Delete runs with everything recorded about them: results and schedules (cascade), their
    training samples and kernel observations (kept by the schema when a run goes, so deleted
    here). The kernel model fits made on those observations stay: they are their own record."""
    session.execute(delete(TrainingSampleSet).where(TrainingSampleSet.run_id.in_(run_ids)))
    session.execute(delete(KernelObservationSet).where(KernelObservationSet.run_id.in_(run_ids)))
    session.execute(delete(Run).where(Run.id.in_(run_ids)))


def expired_run_ids(session: Session, finished_before: datetime, limit: int) -> list[uuid.UUID]:
    """Up to `limit` runs (not of a study: a study goes as a whole) that ended before
    `finished_before`, locked; rows another transaction holds are skipped."""
    query = (
        select(Run.id)
        .where(
            Run.study_id.is_(None),
            Run.status.in_(TERMINAL),
            func.coalesce(Run.finished_at, Run.updated_at) < finished_before,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


TERMINAL = tuple(status for status in RunStatus if status.is_terminal)
