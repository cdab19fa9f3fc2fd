"""Query functions of the learning loop: samples, retraining jobs, model versions."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db import packed
from app.db.models import ModelVersion, TrainingJob, TrainingSampleSet
from app.db.scope import get_visible, visible_to
from app.ml.features import DEVICE_FEATURES, FEATURE_NAMES, TASK_FEATURES, pairs_of
from app.ml.training import RunSamples, Samples
from app.tenancy import Tenant

#: Where each sample's id comes from (db/packed.py).
SAMPLE_IDS = "training_sample_ids"


def draw_sample_ids(session: Session, count: int) -> int:
    """The first of `count` consecutive sample ids (packed.draw_ids: in the transaction that
    adds the samples)."""
    return packed.draw_ids(session, SAMPLE_IDS, count)


def add_samples(session: Session, run_id: uuid.UUID, samples: RunSamples) -> int:
    """Store the run's samples as one packed row (db/packed.py), each task's and each device
    model's features once (RunSamples), with a block of ids drawn in the caller's transaction
    (draw_sample_ids): as 2,000 rows they took ~100 ms to COPY."""
    if samples.count == 0:
        return 0
    packed.insert_set(
        session,
        "training_sample_sets",
        draw_sample_ids(session, samples.count),
        samples.count,
        {
            "run_id": str(run_id),
            "task_features": packed.pack(samples.task_features, packed.FLOAT64),
            "device_features": packed.pack(samples.device_features, packed.FLOAT64),
            "device_kind": packed.pack(samples.device_kind, packed.INT16),
            "seconds": packed.pack(samples.seconds, packed.FLOAT64),
            "oracle_share": packed.pack(samples.oracle_share, packed.FLOAT64),
        },
    )
    return samples.count


def latest_samples(session: Session, window: int) -> Samples:
    """The newest `window` samples, oldest first."""
    sets = session.scalars(
        select(TrainingSampleSet)
        .order_by(TrainingSampleSet.last_id.desc())
        .execution_options(yield_per=64)
    )
    gathered = packed.gather(
        packed.newest(sets, window),
        lambda sample_set: (
            _features(sample_set),
            packed.unpack(sample_set.device_kind, packed.INT16),
            packed.unpack(sample_set.seconds, packed.FLOAT64),
            packed.unpack(sample_set.oracle_share, packed.FLOAT64),
        ),
    )
    if gathered is None:
        return Samples(
            features=np.zeros((0, len(FEATURE_NAMES))),
            device_kind=np.zeros(0, dtype=np.int16),
            seconds=np.zeros(0),
            oracle_share=np.zeros(0),
            ids=np.zeros(0, dtype=np.int64),
        )
    ids, features, kinds, seconds, shares = gathered
    return Samples(
        features=features, device_kind=kinds, seconds=seconds, oracle_share=shares, ids=ids
    )


def _features(sample_set: TrainingSampleSet) -> np.ndarray:
    """Each sample's features: spelled out from its task's and device model's, or as stored by
    sets written before they were stored apart (`features`)."""
    if sample_set.features is not None:
        return packed.unpack(sample_set.features, packed.FLOAT64, len(FEATURE_NAMES))
    task_x, device_x = sample_set.task_features, sample_set.device_features
    assert task_x is not None and device_x is not None  # a set stores one form or the other
    tasks = packed.unpack(task_x, packed.FLOAT64, len(TASK_FEATURES))
    devices = packed.unpack(device_x, packed.FLOAT64, len(DEVICE_FEATURES))
    return pairs_of(tasks, devices)


def sample_count(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.sum(TrainingSampleSet.count), 0))) or 0


def newest_sample_id(session: Session) -> int:
    return session.scalar(select(func.max(TrainingSampleSet.last_id))) or 0


def active_version(session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.is_active)).one_or_none()


def active_version_number(session: Session) -> tuple[int, str] | None:
    """(version, artifact digest) of the active model, without loading its artifact."""
    row = session.execute(
        select(ModelVersion.version, ModelVersion.artifact_digest).where(ModelVersion.is_active)
    ).first()
    return None if row is None else (row.version, row.artifact_digest)


def artifact_of(session: Session, version: int) -> bytes | None:
    return session.scalar(select(ModelVersion.artifact).where(ModelVersion.version == version))


def add_version(session: Session, **fields: Any) -> ModelVersion:
    version = ModelVersion(**fields)
    session.add(version)
    session.flush()
    return version


def activate(session: Session, version: int) -> None:
    """Make `version` the only active one (the partial unique index allows one)."""
    session.execute(update(ModelVersion).where(ModelVersion.is_active).values(is_active=False))
    session.flush()
    session.execute(
        update(ModelVersion).where(ModelVersion.version == version).values(is_active=True)
    )


def get_version(session: Session, version: int) -> ModelVersion | None:
    return session.get(ModelVersion, version)


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.version.desc())))


def get_job(
    session: Session, job_id: uuid.UUID, *, lock: bool = False, tenant: Tenant | None = None
) -> TrainingJob | None:
    """The job; with `tenant`, only if that tenant may see it (None: a worker's own lookup)."""
    return get_visible(session, TrainingJob, job_id, lock=lock, tenant=tenant)


def list_jobs(
    session: Session, tenant: Tenant, limit: int, offset: int
) -> tuple[list[TrainingJob], int]:
    visible = visible_to(TrainingJob, tenant)
    total = session.scalar(select(func.count()).select_from(TrainingJob).where(visible)) or 0
    jobs = session.scalars(
        select(TrainingJob)
        .where(visible)
        .order_by(TrainingJob.created_at.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(jobs), total


def last_job_sample_mark(session: Session) -> int:
    """The newest sample id any automatic retrain has been requested for (0: none)."""
    marks = session.scalars(select(TrainingJob.slot).where(TrainingJob.trigger == "auto")).all()
    return max((int(slot.split(":")[1]) for slot in marks if slot), default=0)
