"""Retraining the `learned` policy's performance model: request, execute, activate, read.

`execute_retrain` is the whole story of a retrain: claim the job (app/services/lifecycle.py:
skip it if already terminal, fail it once its worker was lost HMS_MAX_ATTEMPTS times), read the
newest `training_window` samples, stop as "skipped" if there are too few, fit on four fifths,
score the candidate and the active model on the same holdout fifth, and register the candidate
as a new version — promoted (and activated) only if it beats the active one — in one transaction.

Three triggers, one job each: nightly (celery beat; `slot` = the schedule slot, so a second beat
or a redelivered message finds the existing job), manual (the API), automatic (every
`auto_retrain_samples` new samples, checked periodically; `slot` = the sample count reached).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.exc import IntegrityError

from app.db import lifecycle as db_lifecycle
from app.db import training as store
from app.db.models import JobStatus, ModelVersion, TrainingJob
from app.db.session import session_scope
from app.errors import JobNotFound, TransientStoreError, VersionNotFound
from app.ml import artifacts
from app.ml.training import (
    ALGORITHM,
    FitParams,
    Samples,
    evaluate,
    fit,
    holdout_mask,
    promotion_verdict,
    skip_reason,
)
from app.services import lifecycle
from app.services.ports import ProgressSink, RetrainQueue
from app.services.registry import version_name
from app.settings import get_settings
from app.tenancy import Tenant, require_admin


def request_retrain(tenant: Tenant, queue: RetrainQueue) -> TrainingJob:
    """A manual retrain (admin keys only: the model is shared): record the job, commit, then
    hand it to a worker (if the broker is down, the recovery sweep sends it later)."""
    require_admin(tenant, "retrain the model")
    with session_scope() as session:
        job = TrainingJob(
            id=uuid.uuid4(), trigger="manual", status=JobStatus.QUEUED, tenant=tenant.name
        )
        session.add(job)
    lifecycle.send(job, lambda: queue.enqueue_retrain(job.id), "retraining job")
    return job


def claim_slot(trigger: str, slot: str) -> TrainingJob | None:
    """The job of a schedule slot, created now — or None if that slot already has one (another
    beat fired it, or this message is a redelivery)."""
    try:
        with session_scope() as session:
            job = TrainingJob(id=uuid.uuid4(), trigger=trigger, slot=slot, status=JobStatus.QUEUED)
            session.add(job)
        return job
    except IntegrityError:
        return None


def due_auto_slot() -> str | None:
    """The slot of an automatic retrain that is due (every `auto_retrain_samples` new samples),
    or None (disabled, or not enough new samples yet)."""
    every = get_settings().auto_retrain_samples
    if every <= 0:
        return None
    with session_scope() as session:
        reached = store.newest_sample_id(session) // every * every
        already = store.last_job_sample_mark(session)
    return f"auto:{reached}" if reached > already else None


@dataclass(frozen=True)
class RetrainOutcome:
    status: JobStatus
    message: str
    model_version: int | None = None


def execute_retrain(
    job_id: uuid.UUID, sink: ProgressSink | None = None, worker: str | None = None
) -> RetrainOutcome:
    """Retrain as `worker` (its Celery hostname, recorded with the job)."""
    claimed = lifecycle.claim(TrainingJob, job_id, JobNotFound, worker)
    if claimed is lifecycle.Unclaimed.GAVE_UP:
        return RetrainOutcome(JobStatus.FAILED, "its workers were lost too many times")
    if claimed is lifecycle.Unclaimed.ENDED:
        return RetrainOutcome(JobStatus.SKIPPED, "already finished")
    try:
        outcome = _retrain(job_id, lifecycle.ProgressReporter(TrainingJob, job_id, sink))
    except lifecycle.Cancelled:
        return RetrainOutcome(JobStatus.SKIPPED, "ended while it ran")
    except TransientStoreError:
        raise
    except Exception as exc:  # a failed retrain is recorded once, not retried forever
        outcome = RetrainOutcome(JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
    return _finish(job_id, outcome)


def _retrain(job_id: uuid.UUID, report: ProgressSink) -> RetrainOutcome:
    settings = get_settings()
    started = time.monotonic()
    with session_scope() as session:
        samples = store.latest_samples(session, settings.training_window)
    reason = skip_reason(samples.count, settings.min_training_samples)
    if reason is not None:
        return RetrainOutcome(JobStatus.SKIPPED, reason)
    report(0.05, "loaded")
    holdout = holdout_mask(samples.ids)
    params = FitParams(
        max_iter=settings.training_max_iter, learning_rate=settings.training_learning_rate
    )
    estimator = fit(samples.subset(~holdout), params, lambda f: report(0.05 + 0.8 * f, "fitting"))
    report(0.9, "evaluating")
    return register(job_id, estimator, params, samples, holdout, time.monotonic() - started)


def register(
    job_id: uuid.UUID | None,
    estimator: object,
    params: FitParams,
    samples: Samples,
    holdout: np.ndarray,
    duration_s: float,
) -> RetrainOutcome:
    """Score `estimator` and the active model on the holdout, store the estimator as a new
    version, promote and activate it if it is better, and end the job (`job_id`; None for a
    model trained outside a job). One transaction, and only while the job is still running: a
    job that ended meanwhile (its time limit, another delivery of its message) registers
    nothing."""
    holdout_samples = samples.subset(holdout)
    candidate = evaluate(estimator, holdout_samples)
    data, digest = artifacts.dumps(estimator)
    with session_scope() as session:
        job = None if job_id is None else db_lifecycle.lock_running(session, TrainingJob, job_id)
        if job_id is not None and job is None:
            return RetrainOutcome(JobStatus.SKIPPED, "ended while it ran")
        active = store.active_version(session)
        active_metrics = None
        if active is not None:
            active_estimator = artifacts.loads(active.artifact, active.artifact_digest)
            active_metrics = evaluate(active_estimator, holdout_samples)
        verdict = promotion_verdict(
            candidate, active_metrics, None if active is None else active.version
        )
        version = store.add_version(
            session,
            status="promoted" if verdict.promote else "rejected",
            is_active=False,
            reason=verdict.reason,
            algorithm=ALGORITHM,
            params=params.as_dict(),
            window_first_sample=int(samples.ids.min()),
            window_last_sample=int(samples.ids.max()),
            sample_count=samples.count,
            holdout_count=holdout_samples.count,
            metrics={"candidate": candidate, "active_on_same_holdout": active_metrics},
            artifact_format=artifacts.FORMAT,
            artifact_digest=digest,
            artifact=data,
            job_id=job_id,
            trained_at=datetime.now(UTC),
            duration_s=duration_s,
        )
        if verdict.promote:
            store.activate(session, version.version)
        number = version.version
        judged = "promoted" if verdict.promote else "rejected"
        outcome = RetrainOutcome(
            JobStatus.SUCCEEDED, f"{version_name(number)} {judged}: {verdict.reason}", number
        )
        if job is not None:
            job.end(outcome.status)
            _record(job, outcome)
    return outcome


def fail_job(job_id: uuid.UUID, reason: str) -> None:
    """Record that a running retrain failed (once: no retry will follow)."""
    _finish(job_id, RetrainOutcome(JobStatus.FAILED, reason))


def _finish(job_id: uuid.UUID, outcome: RetrainOutcome) -> RetrainOutcome:
    """Record the outcome, only if the job is still running (lifecycle.finish); a job that
    register() ended is left as it recorded it."""
    lifecycle.finish(TrainingJob, job_id, outcome.status, lambda _, job: _record(job, outcome))
    return outcome


def _record(job: TrainingJob, outcome: RetrainOutcome) -> None:
    job.message = outcome.message
    job.model_version = outcome.model_version
    job.progress = 1.0


def activate_version(tenant: Tenant, version: int) -> ModelVersion:
    """Make a registered version the active one (a manual rollback, or a roll forward); admin
    keys only."""
    require_admin(tenant, "activate a model version")
    with session_scope() as session:
        if store.get_version(session, version) is None:
            raise VersionNotFound(version)
        store.activate(session, version)
        found = store.get_version(session, version)
        assert found is not None
        return found


def list_versions() -> list[ModelVersion]:
    with session_scope() as session:
        return store.list_versions(session)


def get_version(version: int) -> ModelVersion:
    with session_scope() as session:
        found = store.get_version(session, version)
    if found is None:
        raise VersionNotFound(version)
    return found


def get_job(tenant: Tenant, job_id: uuid.UUID) -> TrainingJob:
    with session_scope() as session:
        job = store.get_job(session, job_id, tenant=tenant)
    if job is None:
        raise JobNotFound(job_id)
    return job


def list_jobs(tenant: Tenant, limit: int, offset: int) -> tuple[list[TrainingJob], int]:
    with session_scope() as session:
        return store.list_jobs(session, tenant, limit, offset)
