"""Studies: submit a grid of runs, fan it out, aggregate it exactly once, read, cancel.

The life of a study:
1. `submit_study` validates each cell of the grid once (study spec; its time grows with the
   cells, not the repetitions), inserts the study's row alone, commits, and only then sends ONE
   message: the fan-out. Accepting a study of 100,000 runs takes as long as one of 1,000 runs
   with the same cells (bench/study_scale.py).
2. A worker's `fan_out_study` creates the runs, CREATE_BATCH per transaction (COPY), adding each
   batch to the study's `runs_created` in the same transaction under the study's row lock, and
   sends each batch once it committed, FAN_OUT_BATCH messages at a time, marking them sent. A
   run's id and spec are functions of the study, its cell and its repetition, so whoever creates
   it creates the same run; a redelivered or re-sent fan-out (its worker died) goes on from
   `runs_created` and sends what was created but not sent. The row lock orders creation and
   cancellation: a batch after the cancel is not created. Each run is an ordinary run from there
   on (priority, redelivery, exactly-once results, the recovery sweep).
3. Whenever a run of a study ends (succeeded, failed, cancelled, or found already ended on a
   redelivery), `aggregate_if_done` locks the study's row and, if every run was created, none is
   unfinished and the study is still running, computes the statistics and stores them with
   `succeeded` in the same transaction. The row lock decides who aggregates: two workers
   finishing the last runs together serialize on it, and the second finds the study already
   succeeded. A worker that dies while aggregating rolls its transaction back; the recovery sweep
   (`aggregate_due`) finishes it.
4. `delete_study` hides an ended study at once and sends one message; a worker's `purge_study`
   deletes its runs in batches, then its row (the sweep re-sends a purge that went silent).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import lifecycle as db_lifecycle
from app.db import runs as run_store
from app.db import studies as store
from app.db.models import Run, RunStatus, Study, StudyStatus, utcnow
from app.db.session import make_durable, session_scope
from app.errors import (
    InvalidSpec,
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
from app.studies.spec import PlannedRun, StudySpec, plan_runs, validate_cells
from app.studies.statistics import streamed_statistics
from app.tenancy import Tenant

log = logging.getLogger(__name__)

#: Runs sent per batch by the fan-out (one database update per batch marks them sent).
FAN_OUT_BATCH = 500
#: Runs created per transaction by the fan-out: one COPY, the study's row locked meanwhile (a
#: cancel, and a run of the study that ends, wait for it).
CREATE_BATCH = store.COPY_BATCH


@dataclass(frozen=True)
class StudySubmission:
    study: Study
    created: bool


@dataclass(frozen=True)
class StudyView:
    """A study with its runs counted by status; progress = ended runs / all runs.

    `created` counts the runs recorded so far. While the fan-out is creating them the others
    count as queued (they will be); once the study is cancelled, as cancelled (they never will).
    So the counts always add up to total_runs."""

    study: Study
    created: dict[str, int]

    @property
    def counts(self) -> dict[str, int]:
        missing = self.study.total_runs - self.study.runs_created
        if missing <= 0:
            return self.created
        cancelled = self.study.status == StudyStatus.CANCELLED
        status = (RunStatus.CANCELLED if cancelled else RunStatus.QUEUED).value
        return {**self.created, status: self.created.get(status, 0) + missing}

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
    """Validate each cell of the study, record the study's row, commit, then send the fan-out
    message (which creates the runs). The same idempotency key with the same spec returns the
    existing study, sending its fan-out if that was never sent (idempotency.submit_once)."""
    document = spec.model_dump(mode="json")

    def create(session: Session, digest: str) -> Study:
        # Raises InvalidSpec naming a bad grid key or value (a profile the tenant lacks too).
        validate_cells(spec, run_profiles(tenant.name), get_settings().run_memory_budget_mb)
        return store.add_study(
            session,
            name=spec.name,
            spec=document,
            priority=spec.priority,
            total_runs=spec.total_runs,
            runs_created=0,
            tenant=tenant.name,
            idempotency_key=idempotency_key,
            request_digest=digest,
        )

    study, created = submit_once(
        idempotency_key,
        document,
        lookup=lambda session, key: store.get_study_by_idempotency_key(session, tenant.name, key),
        create=create,
        send=lambda study: _send_fan_out(study, queue),
    )
    return StudySubmission(study, created)


def _send_fan_out(study: Study, queue: StudyQueue) -> None:
    """If the broker is down, the recovery sweep sends the fan-out (a study with runs to create)."""
    lifecycle.send(study, lambda: queue.enqueue_fan_out(study.id), "study")


def study_run_id(study_id: uuid.UUID, cell: int, repetition: int) -> uuid.UUID:
    """The id of a study's run: the same whoever creates it, unique across studies."""
    return uuid.uuid5(study_id, f"{cell}/{repetition}")


def fan_out_study(study_id: uuid.UUID, queue: StudyQueue) -> int:
    """Create the study's runs not created yet, CREATE_BATCH per transaction, sending each batch
    once it committed; then send any run created but never sent (by a delivery whose worker
    died). Returns how many runs this call sent.

    Safe to run twice, one after the other or at once: each batch locks the study's row and
    starts at its `runs_created`; no batch is created once the study is cancelled or deleted."""
    with session_scope() as session:
        study = store.get_study(session, study_id)
        if study is None:
            raise StudyNotFound(study_id)
        spec = StudySpec.model_validate(study.spec)
        digest, tenant = study.request_digest, study.tenant
        to_create = study.runs_created < study.total_runs
    sent = 0
    if to_create:
        try:
            planned = plan_runs(spec, run_profiles(tenant))  # validated at submission
        except InvalidSpec as exc:
            _cancel_unplannable(study_id, exc)
            return 0
        for batch in _created_batches(study_id, planned, digest):
            sent += _send_runs(study_id, batch, spec.priority, queue)
    with session_scope() as session:
        for batch in store.unsent_run_batches(session, study_id, FAN_OUT_BATCH):
            sent += _send_runs(study_id, batch, spec.priority, queue)
    return sent


def _cancel_unplannable(study_id: uuid.UUID, error: InvalidSpec) -> None:
    """A study whose spec passed at submission but no longer plans (a kernel profile it names
    is gone, or a rule tightened since) cannot create its other runs: it is cancelled with its
    runs not ended, as a cancel through the API would, rather than left running for the sweep
    to send its fan-out again every minute; the error is logged."""
    log.error("study %s cannot create its runs, so it is cancelled: %s", study_id, error)
    with session_scope() as session:
        study = store.get_study(session, study_id, lock=True)
        if study is not None and not StudyStatus(study.status).is_terminal:
            _cancel(session, study)


def _cancel(session: Session, study: Study) -> None:
    """Cancel the locked, unended `study` and its runs not ended (those not created count as
    cancelled)."""
    store.cancel_unfinished_runs(session, study.id)
    study.status = StudyStatus.CANCELLED
    study.finished_at = utcnow()


def _created_batches(
    study_id: uuid.UUID, planned: Iterator[PlannedRun], digest: str
) -> Iterator[list[store.StudyRunRef]]:
    """Create the planned runs from the study's `runs_created` on, a batch per transaction,
    yielding each batch's runs after its commit; stop once the study needs no more runs."""
    position = 0  # the planned runs consumed so far
    while True:
        with session_scope() as session:
            study = store.lock_study_creating_runs(session, study_id)
            if study is None:
                return
            skip = study.runs_created - position  # another delivery created them meanwhile
            batch = list(itertools.islice(planned, skip, skip + CREATE_BATCH))
            if not batch:
                return  # not reached: the plan has total_runs runs
            store.add_study_runs(session, (_run_row(study, run, digest) for run in batch))
            study.runs_created += len(batch)
            position = study.runs_created
        yield [_run_ref(study_id, run) for run in batch]


def _run_ref(study_id: uuid.UUID, run: PlannedRun) -> store.StudyRunRef:
    return store.StudyRunRef(
        study_run_id(study_id, run.cell, run.repetition), run.cell, run.repetition
    )


def _run_row(study: Study, run: PlannedRun, digest: str) -> dict[str, Any]:
    return {
        "id": study_run_id(study.id, run.cell, run.repetition),
        "status": RunStatus.QUEUED.value,
        "spec": run.spec,
        "priority": study.priority,
        "tenant": study.tenant,
        "request_digest": digest,
        "progress": 0.0,
        "attempts": 0,
        "study_id": study.id,
        "study_cell": run.cell,
        "study_repetition": run.repetition,
    }


def _send_runs(
    study_id: uuid.UUID, runs: Sequence[store.StudyRunRef], priority: int, queue: StudyQueue
) -> int:
    """Send the runs' messages, up to store.RUNS_PER_MESSAGE runs of a cell to a message
    (store.message_group), about FAN_OUT_BATCH runs at a time, each batch then marked sent and
    the study touched (the sweep leaves a study whose fan-out is alive to it)."""
    batch: list[list[uuid.UUID]] = []
    for _, group in itertools.groupby(runs, key=store.message_group):
        batch.append([run.id for run in group])
        if sum(map(len, batch)) >= FAN_OUT_BATCH:
            _send_batch(study_id, batch, priority, queue)
            batch = []
    if batch:
        _send_batch(study_id, batch, priority, queue)
    return len(runs)


def _send_batch(
    study_id: uuid.UUID, groups: list[list[uuid.UUID]], priority: int, queue: StudyQueue
) -> None:
    queue.enqueue_run_groups(groups, priority)
    with session_scope() as marking:
        store.touch(marking, study_id)  # the study's row first, as cancel_study locks
        db_lifecycle.mark_enqueued(marking, Run, [run_id for ids in groups for run_id in ids])


def resend_quiet_fan_outs(queue: StudyQueue) -> list[str]:
    """The recovery sweep's part: send again the fan-out of studies with runs not created or
    never sent that nothing touched for `requeue_unsent_after_s` (the sweep leaves those runs to
    the fan-out: sending 100,000 runs one by one beside a fan-out that is still at work would
    send them twice)."""
    quiet = timedelta(seconds=get_settings().requeue_unsent_after_s)
    with session_scope() as session:
        due = store.quiet_fan_outs(session, utcnow() - quiet)
    for study_id in due:
        queue.enqueue_fan_out(study_id)
        with session_scope() as session:
            store.touch(session, study_id)
    return [str(study_id) for study_id in due]


def aggregate_if_done(study_id: uuid.UUID) -> bool:
    """Aggregate the study if its last run has ended and nobody has yet; True if this call did.

    While its fan-out is creating runs the study is not done, and its row is not locked here:
    each batch holds that lock through its COPY, and every run that ends would wait for it. The
    last batch's runs end after its commit, so one of them sees all the runs created.

    Asked after every run, it commits asynchronously (session_scope says what that means) unless
    it aggregates: the note that the study is alive is all a run's call writes, and losing it
    only lets the sweep look at the study sooner. The aggregation itself waits for the fsync.
    A run that is not the last needs one statement (`touch_if_unfinished`); without the lock,
    two runs ending together cannot both miss the other: each looks after its own commit, so
    the later one sees both ended, then takes the lock and looks again."""
    with session_scope(durable=False) as session:
        if store.touch_if_unfinished(session, study_id):
            return False
        if store.runs_to_create(session, study_id):
            return False
        study = db_lifecycle.lock_running(session, Study, study_id)
        if study is None:
            return False
        if store.has_unfinished(session, study_id):
            study.updated_at = utcnow()  # a run just ended: the study is alive
            return False
        make_durable(session)
        spec = StudySpec.model_validate(study.spec)
        study.statistics = streamed_statistics(
            store.outcomes_by_cell(session, study_id),
            spec.cells(),
            store.metric_names(session, study_id),
            _rank_by(session, study_id, spec),
        )
        study.end(StudyStatus.SUCCEEDED)
        return True


def study_of(run_id: uuid.UUID) -> uuid.UUID | None:
    """The study the run belongs to (None: a lone run, or gone)."""
    with session_scope() as session:
        return session.scalar(select(Run.study_id).where(Run.id == run_id))


def after_run_ended(run_id: uuid.UUID) -> None:
    """Called whenever a run has ended (or was found ended): aggregate its study if it was the
    last one."""
    study_id = study_of(run_id)
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
        _cancel(session, study)
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
