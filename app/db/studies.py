"""Query functions for studies and their runs. They take the caller's session and never commit."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Exists, and_, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from app.db.bulk import copy_rows
from app.db.models import (
    UNFINISHED,
    Run,
    RunResult,
    RunStatus,
    Study,
    StudyStatus,
    TrainingSampleSet,
    utcnow,
)
from app.db.scope import get_visible, visible_to
from app.studies.statistics import RunRecord
from app.tenancy import Tenant


def add_study(session: Session, **fields: Any) -> Study:
    study = Study(**fields)
    session.add(study)
    session.flush()
    return study


#: The columns `add_study_runs` fills; the others take their server defaults.
STUDY_RUN_COLUMNS = (
    "id", "status", "spec", "priority", "tenant", "request_digest", "progress", "attempts",
    "study_id", "study_cell", "study_repetition",
)  # fmt: skip


#: Runs per COPY: the rows of one COPY are held as CSV text (about 0.7 KB a run), so a
#: 100,000-run study is inserted in 10 of them, not held whole (bench/study_scale.py).
COPY_BATCH = 10_000


def add_study_runs(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Insert the study's runs with COPY (bulk.py), COPY_BATCH at a time, in the caller's
    transaction; `rows` have the STUDY_RUN_COLUMNS."""
    values = ([row[c] for c in STUDY_RUN_COLUMNS] for row in rows)
    while batch := list(itertools.islice(values, COPY_BATCH)):
        copy_rows(session, "runs", STUDY_RUN_COLUMNS, batch)


def lock_study_creating_runs(session: Session, study_id: uuid.UUID) -> Study | None:
    """The study, locked, if runs are still to be created for it: running, not deleted, fewer
    runs than total_runs. None otherwise (cancelled, deleted or gone: create no more)."""
    study = get_study(session, study_id, lock=True)
    if study is None or study.status != StudyStatus.RUNNING:
        return None
    return study if study.runs_created < study.total_runs else None


def runs_to_create(session: Session, study_id: uuid.UUID) -> bool:
    """Whether some of the study's runs are not created yet (read without a lock)."""
    query = select(Study.id).where(Study.id == study_id, Study.runs_created < Study.total_runs)
    return session.scalar(query) is not None


def get_study(
    session: Session, study_id: uuid.UUID, *, lock: bool = False, tenant: Tenant | None = None
) -> Study | None:
    """The study; with `tenant`, only if that tenant may see it (None: a worker's own lookup).
    None for a study deleted (its rows may still be on their way out: purge_study)."""
    study = get_visible(session, Study, study_id, lock=lock, tenant=tenant)
    return None if study is None or study.deleted_at is not None else study


def get_study_by_idempotency_key(session: Session, tenant: str, key: str) -> Study | None:
    query = select(Study).where(Study.tenant == tenant, Study.idempotency_key == key)
    return session.scalars(query).one_or_none()


def list_studies(
    session: Session, tenant: Tenant, *, status: StudyStatus | None, limit: int, offset: int
) -> tuple[list[Study], int]:
    query = select(Study).where(visible_to(Study, tenant), Study.deleted_at.is_(None))
    if status is not None:
        query = query.where(Study.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(query.order_by(Study.created_at.desc()).limit(limit).offset(offset))
    return list(page), total


def run_counts(session: Session, study_id: uuid.UUID) -> dict[str, int]:
    """How many of the study's runs are in each status."""
    rows = session.execute(
        select(Run.status, func.count()).where(Run.study_id == study_id).group_by(Run.status)
    )
    return {status: count for status, count in rows}


def run_counts_of(
    session: Session, study_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """run_counts for a page of studies, in one query."""
    rows = session.execute(
        select(Run.study_id, Run.status, func.count())
        .where(Run.study_id.in_(study_ids))
        .group_by(Run.study_id, Run.status)
    )
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for study_id, status, count in rows:
        if study_id is not None:  # always, by the WHERE clause
            counts.setdefault(study_id, {})[status] = count
    return counts


def touch_if_unfinished(session: Session, study_id: uuid.UUID) -> bool:
    """Note that the running study is alive (`updated_at`: the recovery sweep's quiet periods)
    if all its runs were created and one has not ended; True then: it is not done. One
    statement, what most runs of a study need after they end. A study whose runs are still
    being created is not touched and its row not waited for: the fan-out's batch holds it."""
    query = (
        update(Study)
        .where(
            Study.id == study_id,
            Study.status == StudyStatus.RUNNING,
            Study.runs_created >= Study.total_runs,
            _unfinished_runs_exist(),
        )
        .values(updated_at=utcnow())
        .returning(Study.id)
        .execution_options(synchronize_session=False)
    )
    return session.execute(query).first() is not None


def _unfinished_runs_exist() -> Exists:
    """Whether a run of the study in the enclosing query (`Study.id`) has not ended."""
    return select(Run.id).where(Run.study_id == Study.id, Run.status.in_(UNFINISHED)).exists()


def has_unfinished(session: Session, study_id: uuid.UUID) -> bool:
    """Whether a run of the study has not ended. EXISTS, not a count: asked after every run, a
    count would read every unfinished run's index entry each time (quadratic in the runs)."""
    query = select(Run.id).where(Run.study_id == study_id, Run.status.in_(UNFINISHED)).exists()
    return bool(session.scalar(select(query)))


#: Runs of a study's cell sent in one message (at most; services/runs.execute_runs executes
#: them one after the other): Celery's handling of a message, and the study's check after it,
#: are then shared by several small runs (6-15 ms a run saved: bench/README.md). A constant, not
#: a setting: the recovery sweep counts the messages the broker should hold by it
#: (`awaiting_run_messages`), so it must be the one the fan-out that sent them used.
RUNS_PER_MESSAGE = 8


class StudyRunRef(NamedTuple):
    """A study's run as its fan-out sends it: its id, its cell and its repetition."""

    id: uuid.UUID
    cell: int
    repetition: int


def message_group(run: StudyRunRef) -> tuple[int, int]:
    """Which message of its study a run is sent in: runs of a cell, RUNS_PER_MESSAGE
    consecutive repetitions to a message (`awaiting_run_messages` counts them so in SQL)."""
    return run.cell, run.repetition // RUNS_PER_MESSAGE


def awaiting_run_messages(session: Session) -> int:
    """How many messages the broker should hold for runs (Attempted.awaiting_message): one a
    lone run, one a `message_group` of a study's runs. A group split over two messages (by the
    fan-out's batches, or a run sent again alone) counts once: the count errs towards fewer,
    so the recovery sweep does not take held messages for lost ones."""
    lone = func.count().filter(Run.study_id.is_(None))
    grouped = func.count(
        func.distinct(
            tuple_(Run.study_id, Run.study_cell, Run.study_repetition // RUNS_PER_MESSAGE)
        )
    ).filter(Run.study_id.is_not(None))
    row = session.execute(select(lone, grouped).where(Run.awaiting_message())).one()
    return int(row[0]) + int(row[1])


def unsent_run_batches(
    session: Session, study_id: uuid.UUID, size: int
) -> Iterator[list[StudyRunRef]]:
    """The study's runs never sent, in cell order, `size` at a time, from a server-side cursor:
    a study's fan-out holds one batch of them, not all."""
    query = (
        select(Run.id, Run.study_cell, Run.study_repetition)
        .where(Run.study_id == study_id, Run.status == RunStatus.QUEUED, Run.enqueued_at.is_(None))
        .order_by(Run.study_cell, Run.study_repetition)
        .execution_options(yield_per=size)
    )
    for batch in session.execute(query).partitions():  # a study's run has its cell, repetition
        yield [StudyRunRef(run_id, cast(int, cell), cast(int, rep)) for run_id, cell, rep in batch]


def touch(session: Session, study_id: uuid.UUID) -> None:
    """Note that the study's fan-out is alive (the sweep leaves its unsent runs to it)."""
    session.execute(update(Study).where(Study.id == study_id).values(updated_at=utcnow()))


#: A run of a study not sent yet: its study's fan-out sends it (or the sweep sends the fan-out).
UNSENT_STUDY_RUN = and_(Run.study_id.is_not(None), Run.enqueued_at.is_(None))


def quiet_fan_outs(session: Session, quiet_before: datetime) -> list[uuid.UUID]:
    """Running studies with runs not created yet or never sent, untouched since `quiet_before`:
    their fan-out message was lost (a broker that crashed, or never sent: a broker down at
    submission), or its worker died (a redelivery that never came)."""
    unsent = (
        select(Run.id)
        .where(Run.study_id == Study.id, Run.status == RunStatus.QUEUED, Run.enqueued_at.is_(None))
        .exists()
    )
    query = select(Study.id).where(
        Study.status == StudyStatus.RUNNING,
        Study.deleted_at.is_(None),
        Study.updated_at < quiet_before,
        (Study.runs_created < Study.total_runs) | unsent,
    )
    return list(session.scalars(query))


def cancel_unfinished_runs(session: Session, study_id: uuid.UUID) -> int:
    result = session.execute(
        update(Run)
        .where(Run.study_id == study_id, Run.status.in_(UNFINISHED))
        .values(status=RunStatus.CANCELLED, finished_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


#: The numeric metrics of a stored result that a study's statistics summarise.
RESULT_METRICS = (
    "makespan", "mean_flow_time", "p95_flow_time", "mean_slowdown", "energy", "cost",
    "mean_utilization", "slr", "speedup", "lower_bound", "gap_to_bound", "gap_to_oracle",
)  # fmt: skip
#: Result rows fetched per round trip while a study's runs are streamed (about 200 bytes each).
OUTCOME_BATCH = 5000


def outcomes_by_cell(
    session: Session, study_id: uuid.UUID
) -> Iterator[tuple[int, Iterator[RunRecord]]]:
    """The study's runs with their results (none unless it succeeded), one cell at a time in
    cell order (what `statistics.streamed_statistics` reads), each cell's records made one at a
    time as they are read: the rows come from a server-side cursor, `OUTCOME_BATCH` at a time,
    so no cell's records are held at once. Read each cell's records before the next cell."""
    metrics = [getattr(RunResult, metric) for metric in RESULT_METRICS]
    query = (
        select(Run.study_cell, Run.study_repetition, Run.id, Run.status, RunResult.policy, *metrics)
        .outerjoin(RunResult, RunResult.run_id == Run.id)
        .where(Run.study_id == study_id)
        .order_by(Run.study_cell, Run.study_repetition, Run.id, RunResult.id)
        .execution_options(yield_per=OUTCOME_BATCH)
    )
    rows = session.execute(query)
    for cell, cell_rows in itertools.groupby(rows, key=lambda row: row[0]):
        runs = itertools.groupby(cell_rows, key=lambda row: row[2])
        yield cell or 0, (_record(list(run_rows)) for _, run_rows in runs)


def _record(rows: list[Sequence[Any]]) -> RunRecord:
    """One run's RunRecord from its rows (one per result; one with policy None when none)."""
    cell, repetition, _, status = rows[0][:4]
    results = {
        row[4]: {
            metric: value
            for metric, value in zip(RESULT_METRICS, row[5:], strict=True)
            if isinstance(value, int | float)
        }
        for row in rows
        if row[4] is not None
    }
    return RunRecord(cell or 0, repetition or 0, status, results)


def metric_names(session: Session, study_id: uuid.UUID) -> list[str]:
    """The RESULT_METRICS with a value in some succeeded run of the study, sorted (what
    `statistics.study_statistics` finds in the records), counted by the database."""
    counts = session.execute(
        select(*(func.count(getattr(RunResult, metric)) for metric in RESULT_METRICS))
        .join(Run, Run.id == RunResult.run_id)
        .where(Run.study_id == study_id, Run.status == RunStatus.SUCCEEDED)
    ).one()
    return sorted(metric for metric, count in zip(RESULT_METRICS, counts, strict=True) if count)


def most_common_rank_by(session: Session, study_id: uuid.UUID) -> str | None:
    """The rank metric most of the study's runs resolved (ties: the first by name); None when
    no run resolved one."""
    query = (
        select(Run.rank_by)
        .where(Run.study_id == study_id, Run.rank_by.is_not(None))
        .group_by(Run.rank_by)
        .order_by(func.count().desc(), Run.rank_by)
        .limit(1)
    )
    return session.scalar(query)


def due_for_aggregation(session: Session, quiet_before: datetime) -> list[uuid.UUID]:
    """Running studies with all their runs created, none unfinished, untouched since
    `quiet_before`: their last run ended but the aggregation did not happen (its worker died)."""
    query = select(Study.id).where(
        Study.status == StudyStatus.RUNNING,
        Study.updated_at < quiet_before,
        Study.runs_created >= Study.total_runs,
        ~_unfinished_runs_exist(),
    )
    return list(session.scalars(query))


def delete_studies(session: Session, study_ids: Sequence[uuid.UUID]) -> None:
    """Delete studies with their runs, the runs' results and schedules (cascade) and the runs'
    training samples (kept by the schema when a run goes, so deleted here)."""
    runs = select(Run.id).where(Run.study_id.in_(study_ids))
    session.execute(delete(TrainingSampleSet).where(TrainingSampleSet.run_id.in_(runs)))
    session.execute(delete(Study).where(Study.id.in_(study_ids)))


def touch_deleted(session: Session, study_id: uuid.UUID) -> bool:
    """Lock a study marked deleted and note that its purge is alive (updated_at: the recovery
    sweep re-sends a purge that went silent); False if it is gone or not marked."""
    query = (
        update(Study)
        .where(Study.id == study_id, Study.deleted_at.is_not(None))
        .values(updated_at=utcnow())
        .returning(Study.id)
    )
    return session.scalar(query) is not None


def run_ids_of(session: Session, study_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
    """Up to `limit` of the study's runs."""
    return list(session.scalars(select(Run.id).where(Run.study_id == study_id).limit(limit)))


def delete_deleted_study(session: Session, study_id: uuid.UUID) -> None:
    """Delete the row of a study marked deleted (its runs, if any are left, by cascade)."""
    session.execute(delete(Study).where(Study.id == study_id, Study.deleted_at.is_not(None)))


def silent_deleted_study_ids(session: Session, silent_before: datetime) -> list[uuid.UUID]:
    """Studies marked deleted, still there, whose purge did nothing since `silent_before`."""
    query = select(Study.id).where(Study.deleted_at.is_not(None), Study.updated_at < silent_before)
    return list(session.scalars(query))


def expired_study_ids(session: Session, finished_before: datetime, limit: int) -> list[uuid.UUID]:
    """Up to `limit` studies that ended before `finished_before`, locked (others skipped)."""
    query = (
        select(Study.id)
        .where(
            Study.status.in_([StudyStatus.SUCCEEDED, StudyStatus.CANCELLED]),
            func.coalesce(Study.finished_at, Study.updated_at) < finished_before,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))
