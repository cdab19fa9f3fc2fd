"""Studies: submit a grid of runs, fan it out, aggregate it exactly once, read, cancel.

The life of a study:
1. `submit_study` validates every cell (study spec), inserts the study and all its runs in one
   transaction, commits, and only then sends ONE message: the fan-out. API time does not grow
   with the number of broker round trips a study needs.
2. A worker's `fan_out_study` sends the runs' messages on one broker connection, in batches,
   marking each batch sent. Each run is an ordinary run from there on (priority, redelivery,
   exactly-once results, the recovery sweep re-sending what a crash left unsent).
3. Whenever a run of a study ends (succeeded, failed, cancelled, or found already ended on a
   redelivery), `aggregate_if_done` locks the study's row and, if no run is unfinished and the
   study is still running, computes the statistics and stores them with `succeeded` in the same
   transaction. The row lock decides who aggregates: two workers finishing the last runs together
   serialize on it, and the second finds the study already succeeded. A worker that dies while
   aggregating rolls its transaction back; the recovery sweep (`aggregate_due`) finishes it.
4. `delete_study` hides an ended study at once and sends one message; a worker's `purge_study`
   deletes its runs in batches, then its row (the sweep re-sends a purge that went silent).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import lifecycle as db_lifecycle
from app.db import runs as run_store
from app.db import studies as store
from app.db.models import Run, RunStatus, Study, StudyStatus, utcnow
from app.db.session import session_scope
from app.errors import (
    StudyNotCancellable,
    StudyNotDeletable,
    StudyNotFound,
    StudyNotReady,
    TransientStoreError,
)
from app.services import lifecycle
from app.services.idempotency import submit_once
from app.services.ports import StudyQueue
from app.services.profiles import run_profiles
from app.settings import get_settings
from app.studies.spec import StudySpec, plan_runs
from app.studies.statistics import streamed_statistics
from app.tenancy import Tenant

log = logging.getLogger(__name__)

#: Runs sent per batch by the fan-out (one database update per batch marks them sent).
FAN_OUT_BATCH = 500


@dataclass(frozen=True)
class StudySubmission:
    study: Study
    created: bool


@dataclass(frozen=True)
class StudyView:
    """A study with its runs counted by status; progress = ended runs / all runs."""

    study: Study
    counts: dict[str, int]

    @property
    def finished_runs(self) -> int:
        return sum(n for status, n in self.counts.items() if RunStatus(status).is_terminal)

    @property
    def progress(self) -> float:
        total = self.study.total_runs
        return self.finished_runs / total if total else 1.0


def submit_study(
    tenant: Tenant, spec: StudySpec, queue: StudyQueue, idempotency_key: str | None = None
) -> StudySubmission:
    """Record the tenant's study and all its runs, commit, then send the fan-out message. The
    same idempotency key with the same spec returns the existing study, sending its fan-out if
    that was never sent (idempotency.submit_once)."""
    document = spec.model_dump(mode="json")

    def create(session: Session, digest: str) -> Study:
        # Raises InvalidSpec naming a bad grid key or value (a profile the tenant lacks too).
        budget_mb = get_settings().run_memory_budget_mb
        planned = plan_runs(spec, run_profiles(tenant.name), budget_mb)  # streamed into COPY
        study = store.add_study(
            session,
            name=spec.name,
            spec=document,
            priority=spec.priority,
            total_runs=spec.total_runs,
            tenant=tenant.name,
            idempotency_key=idempotency_key,
            request_digest=digest,
        )
        store.add_study_runs(
            session,
            (
                {
                    "id": uuid.uuid4(),
                    "status": RunStatus.QUEUED.value,
                    "spec": run.spec,
                    "priority": spec.priority,
                    "tenant": tenant.name,
                    "request_digest": digest,
                    "progress": 0.0,
                    "attempts": 0,
                    "study_id": study.id,
                    "study_cell": run.cell,
                    "study_repetition": run.repetition,
                }
                for run in planned
            ),
        )
        return study

    study, created = submit_once(
        idempotency_key,
        document,
        lookup=lambda session, key: store.get_study_by_idempotency_key(session, tenant.name, key),
        create=create,
        send=lambda study: _send_fan_out(study, queue),
    )
    return StudySubmission(study, created)


def _send_fan_out(study: Study, queue: StudyQueue) -> None:
    """If the broker is down, the recovery sweep sends the study's runs (unsent queued runs)."""
    lifecycle.send(study, lambda: queue.enqueue_fan_out(study.id), "study")


def fan_out_study(study_id: uuid.UUID, queue: StudyQueue) -> int:
    """Send every run of the study not sent yet, FAN_OUT_BATCH at a time; returns how many were
    sent. The ids come from a server-side cursor (memory: one batch); each batch is marked sent,
    and the study touched, in its own transaction, so that a redelivered fan-out (its worker
    died) goes on where this one stopped and the sweep leaves the study to it meanwhile."""
    sent = 0
    with session_scope() as session:
        study = store.get_study(session, study_id)
        if study is None:
            raise StudyNotFound(study_id)
        for batch in store.unsent_run_id_batches(session, study_id, FAN_OUT_BATCH):
            queue.enqueue_runs(batch, study.priority)
            with session_scope() as marking:
                store.touch(marking, study_id)  # the study's row first, as cancel_study locks
                db_lifecycle.mark_enqueued(marking, Run, batch)
            sent += len(batch)
    return sent


def resend_quiet_fan_outs(queue: StudyQueue) -> list[str]:
    """The recovery sweep's part: send again the fan-out of studies with runs never sent that
    nothing touched for `requeue_unsent_after_s` (the sweep leaves those runs to the fan-out:
    sending 100,000 runs one by one beside a fan-out that is still at work would send them
    twice)."""
    quiet = timedelta(seconds=get_settings().requeue_unsent_after_s)
    with session_scope() as session:
        due = store.quiet_fan_outs(session, utcnow() - quiet)
    for study_id in due:
        queue.enqueue_fan_out(study_id)
        with session_scope() as session:
            store.touch(session, study_id)
    return [str(study_id) for study_id in due]


def aggregate_if_done(study_id: uuid.UUID) -> bool:
    """Aggregate the study if its last run has ended and nobody has yet; True if this call did."""
    with session_scope() as session:
        study = db_lifecycle.lock_running(session, Study, study_id)
        if study is None:
            return False
        if store.has_unfinished(session, study_id):
            study.updated_at = utcnow()  # a run just ended: the study is alive
            return False
        spec = StudySpec.model_validate(study.spec)
        study.statistics = streamed_statistics(
            store.outcomes_by_cell(session, study_id),
            spec.cells(),
            store.metric_names(session, study_id),
            _rank_by(session, study_id, spec),
        )
        study.end(StudyStatus.SUCCEEDED)
        return True


def after_run_ended(run_id: uuid.UUID) -> None:
    """Called whenever a run has ended (or was found ended): aggregate its study if it was the
    last one."""
    with session_scope() as session:
        study_id = session.scalar(select(Run.study_id).where(Run.id == run_id))
    if study_id is not None:
        aggregate_if_done(study_id)


def aggregate_due() -> list[str]:
    """The recovery sweep's part: aggregate studies whose last run ended but whose aggregation
    did not happen (its worker died), after a quiet period."""
    quiet = timedelta(seconds=get_settings().requeue_unsent_after_s)
    with session_scope() as session:
        due = store.due_for_aggregation(session, utcnow() - quiet)
    return [str(study_id) for study_id in due if aggregate_if_done(study_id)]


def cancel_study(tenant: Tenant, study_id: uuid.UUID) -> StudyView:
    """Cancel a running study and every run of it not yet ended (running ones stop at their next
    progress report; queued ones are skipped when their message arrives)."""
    with session_scope() as session:
        study = store.get_study(session, study_id, lock=True, tenant=tenant)
        if study is None:
            raise StudyNotFound(study_id)
        if StudyStatus(study.status).is_terminal:
            raise StudyNotCancellable(study_id, study.status)
        store.cancel_unfinished_runs(session, study_id)
        study.status = StudyStatus.CANCELLED
        study.finished_at = utcnow()
        return StudyView(study, store.run_counts(session, study_id))


def delete_study(tenant: Tenant, study_id: uuid.UUID, queue: StudyQueue) -> StudyDeletion:
    """Delete a study that ended (or was cancelled) with all its runs and what they recorded.

    The study is marked deleted and hidden at once (a 404, gone from lists); its rows go in the
    background (`purge_study`, a worker's task), because deleting them takes time that grows
    with the runs, more than a request should wait (bench/study_delete.py: 20,000 runs took
    29-43 s on a loaded 2-core VM, the answer 0.15-0.28 s). A broker that cannot be reached
    delays the purge, not the answer: the recovery sweep sends it (`resend_purges`)."""
    with session_scope() as session:
        study = store.get_study(session, study_id, lock=True, tenant=tenant)
        if study is None:
            raise StudyNotFound(study_id)
        if not StudyStatus(study.status).is_terminal:
            raise StudyNotDeletable(study_id, study.status)
        study.deleted_at = study.updated_at = utcnow()
        deletion = StudyDeletion(study_id, study.total_runs)
    try:
        queue.enqueue_purge(study_id)
    except TransientStoreError:
        log.warning("could not send the purge of study %s: the sweep will", study_id)
    return deletion


@dataclass(frozen=True)
class StudyDeletion:
    study_id: uuid.UUID
    runs: int  # the study's runs, deleted in the background


def purge_study(study_id: uuid.UUID) -> int:
    """Delete the rows of a study marked deleted: its runs with everything they recorded
    (runs.delete_runs), `retention_batch` runs per transaction so that none holds many locks or
    runs long, then the study's row. Returns how many runs this call deleted.

    Idempotent: a second call (a redelivery, the sweep's re-send) goes on where the first
    stopped, or finds nothing; each transaction locks the study's row, so two take turns."""
    batch = get_settings().retention_batch
    deleted = 0
    while True:
        with session_scope() as session:
            if not store.touch_deleted(session, study_id):
                return deleted  # gone already (or never marked)
            run_ids = store.run_ids_of(session, study_id, batch)
            run_store.delete_runs(session, run_ids)
            if len(run_ids) < batch:
                store.delete_deleted_study(session, study_id)
        deleted += len(run_ids)
        if len(run_ids) < batch:
            return deleted


def resend_purges(queue: StudyQueue) -> list[str]:
    """The recovery sweep's part: send again the purge of studies marked deleted whose purge
    did nothing for `requeue_queued_after_s` (its message was lost, or its worker died)."""
    silent = timedelta(seconds=get_settings().requeue_queued_after_s)
    with session_scope() as session:
        due = store.silent_deleted_study_ids(session, utcnow() - silent)
    for study_id in due:
        queue.enqueue_purge(study_id)
    return [str(study_id) for study_id in due]


def get_study(tenant: Tenant, study_id: uuid.UUID) -> StudyView:
    with session_scope() as session:
        study = store.get_study(session, study_id, tenant=tenant)
        if study is None:
            raise StudyNotFound(study_id)
        return StudyView(study, store.run_counts(session, study_id))


def list_studies(
    tenant: Tenant, status: StudyStatus | None, limit: int, offset: int
) -> tuple[list[StudyView], int]:
    with session_scope() as session:
        studies, total = store.list_studies(
            session, tenant, status=status, limit=limit, offset=offset
        )
        counts = store.run_counts_of(session, [study.id for study in studies])
    return [StudyView(study, counts.get(study.id, {})) for study in studies], total


def get_statistics(tenant: Tenant, study_id: uuid.UUID) -> tuple[Study, dict[str, Any]]:
    view = get_study(tenant, study_id)
    if view.study.statistics is None:
        raise StudyNotReady(study_id, view.study.status, view.finished_runs, view.study.total_runs)
    return view.study, view.study.statistics


def _rank_by(session: Session, study_id: uuid.UUID, spec: StudySpec) -> str:
    """The base spec's rank metric; when it leaves the default, the one the runs resolved (the
    same for every cell unless the grid changes the kind of workload: then the most common)."""
    if spec.base.rank_by is not None:
        return spec.base.rank_by
    return store.most_common_rank_by(session, study_id) or "makespan"
