"""The tables. Every change here comes with an Alembic revision in migrations/versions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONB}


def utcnow() -> datetime:
    return datetime.now(UTC)


#: The statuses every kind of work shares. Work that is queued or running has not ended; every
#: other status is terminal: a redelivered message finds it ended and does nothing.
QUEUED, RUNNING, FAILED = "queued", "running", "failed"
UNFINISHED = (QUEUED, RUNNING)


class LifecycleStatus(StrEnum):
    """The base of each kind of work's status enum: which statuses are terminal and the CHECK
    constraint naming the known ones are defined here, once."""

    @property
    def is_terminal(self) -> bool:
        return self.value not in UNFINISHED

    @classmethod
    def check_constraint(cls) -> CheckConstraint:
        values = ", ".join(f"'{status.value}'" for status in cls)
        return CheckConstraint(f"status IN ({values})", name="status_known")


class Work:
    """The lifecycle columns of work handed to workers through a message (a run, a retraining
    job, a study): its status, when it was created, last touched, sent and finished."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set from Python on every update, so the new value is known without a refresh; progress
    # writes keep it fresh, which tells the recovery sweep the work is alive.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its message was last sent to the broker; None: committed but never sent.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    if TYPE_CHECKING:  # declared by each table, with its own type and default
        id: Mapped[uuid.UUID]
        status: Mapped[str]

    @property
    def ended(self) -> bool:
        return self.status not in UNFINISHED

    def end(self, status: str) -> None:
        """Give it a terminal status (its row is locked)."""
        self.status = status
        self.finished_at = utcnow()


class Attempted(Work):
    """Work a worker executes in attempts (a run, a retraining job): progress, attempts, and when
    the first attempt started."""

    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # What the worker is doing now ("simulating heft (3/9)", "storing results"); None before
    # its first report of an attempt.
    phase: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The worker of its latest attempt (Celery's hostname, "celery@worker1"): with workers on
    # several hosts, where it ran. None before its first attempt, or executed outside a worker.
    worker: Mapped[str | None] = mapped_column(String(255))

    def begin_attempt(self, worker: str | None = None, phase: str | None = None) -> None:
        """`worker` claimed it (its row is locked): running, one more attempt, progress 0, in
        `phase` (None: its first report will say)."""
        self.status = RUNNING
        self.attempts += 1
        self.progress = 0.0
        self.phase = phase
        self.worker = worker
        self.started_at = self.started_at or utcnow()

    #: The column that says why it failed (runs: `error`; retraining jobs: `message`).
    ERROR_COLUMN: ClassVar[str]

    def record_error(self, error: str) -> None:
        """Store why it failed."""
        setattr(self, self.ERROR_COLUMN, error)

    @classmethod
    def stuck(
        cls, unsent_before: datetime, queued_before: datetime | None, silent_before: datetime
    ) -> ColumnElement[bool]:
        """What the recovery sweep sends again: queued and never sent (a crash between commit
        and enqueue), queued and sent long ago (the message may be lost; None: none is),
        running but silent."""
        queued = cls.status == QUEUED
        clauses = [
            and_(queued, cls.enqueued_at.is_(None), cls.created_at < unsent_before),
            and_(cls.status == RUNNING, cls.updated_at < silent_before),
        ]
        if queued_before is not None:
            clauses.append(and_(queued, cls.enqueued_at < queued_before))
        return or_(*clauses)

    @classmethod
    def awaiting_message(cls) -> ColumnElement[bool]:
        """Work whose message the broker should hold: queued and sent, or running (a worker
        acknowledges the message when the work ends)."""
        return or_(and_(cls.status == QUEUED, cls.enqueued_at.is_not(None)), cls.status == RUNNING)


class RunStatus(LifecycleStatus):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Run(Attempted, Base):
    """One simulation run: a spec, its lifecycle, and (via RunResult) its results."""

    __tablename__ = "runs"
    __table_args__ = (
        RunStatus.check_constraint(),
        CheckConstraint("priority BETWEEN 0 AND 9", name="priority_range"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
        Index("ix_runs_status_created_at", "status", "created_at"),
        Index("ix_runs_created_at", "created_at"),
        Index("ix_runs_status_updated_at", "status", "updated_at"),
        Index("ix_runs_study_id_status", "study_id", "status"),
        Index("ix_runs_tenant_created_at", "tenant", "created_at"),
        UniqueConstraint("tenant", "idempotency_key", name="uq_runs_tenant_idempotency_key"),
        # A study's run is created once, whoever creates it (a redelivered fan-out).
        UniqueConstraint(
            "study_id", "study_cell", "study_repetition", name="uq_runs_study_cell_repetition"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED)
    spec: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(SmallInteger)
    # Who submitted it (an API key's name); None for runs recorded before tenants.
    tenant: Mapped[str | None] = mapped_column(String(64))
    # Unique per tenant: two teams may both use "nightly-1".
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # sha256 of the canonical spec JSON: tells a retried request from a reused key.
    request_digest: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # What the learning policies started from, so a result can be traced and reproduced.
    model_version: Mapped[str | None] = mapped_column(String(64))
    rl_state_version: Mapped[int | None]
    # The kernel_model_fits version the runtime schedulers decided with (spec.perf_model);
    # None when no fitted model was used (none needed, `exact`, or no tenant).
    perf_model_version: Mapped[int | None]
    # The metric its results are ranked by (makespan, mean_flow_time, ...); None for runs
    # recorded before results were ranked.
    rank_by: Mapped[str | None] = mapped_column(String(32))
    # How many tasks it simulated, once it succeeded (None for runs recorded before it was kept):
    # what tells a reader why its per-task schedules were not kept (schedule_max_tasks).
    num_tasks: Mapped[int | None]
    # The simulator that ran it (app/sim/version.py), once it succeeded; None for runs recorded
    # before it was kept. Says why a schedule recomputed on read no longer matches the run.
    engine_version: Mapped[str | None] = mapped_column(String(64))
    # A run of a study: which cell of its grid, which repetition (None for a lone run).
    study_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    study_cell: Mapped[int | None]
    study_repetition: Mapped[int | None]

    ERROR_COLUMN = "error"


class StudyStatus(LifecycleStatus):
    RUNNING = "running"  # its runs are queued or running, or it awaits aggregation
    SUCCEEDED = "succeeded"  # every run ended and the statistics are stored
    CANCELLED = "cancelled"


class Study(Work, Base):
    """A grid of runs and, once every run ended, their statistics (aggregated exactly once)."""

    __tablename__ = "studies"
    __table_args__ = (
        StudyStatus.check_constraint(),
        CheckConstraint("priority BETWEEN 0 AND 9", name="priority_range"),
        Index("ix_studies_created_at", "created_at"),
        Index("ix_studies_status_updated_at", "status", "updated_at"),
        Index("ix_studies_tenant_created_at", "tenant", "created_at"),
        UniqueConstraint("tenant", "idempotency_key", name="uq_studies_tenant_idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=StudyStatus.RUNNING)
    spec: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(SmallInteger)
    total_runs: Mapped[int]
    # Its runs recorded so far: the fan-out creates them in batches, each batch adding to this
    # in its own transaction (services/studies.py); total_runs once all are, fewer while they
    # are being created or when the study was cancelled before they all were.
    runs_created: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tenant: Mapped[str | None] = mapped_column(String(64))  # as Run.tenant
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_digest: Mapped[str] = mapped_column(String(64))
    # Per cell x policy x metric (app/studies/statistics.py); None until aggregated.
    statistics: Mapped[dict[str, Any] | None]
    # When DELETE asked for it to go: hidden from then on, its rows removed in the background
    # (services/studies.py, purge_study); None for a study not deleted.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunResult(Base):
    """One policy's metrics in one run. (run_id, policy) is unique: results are written once."""

    __tablename__ = "run_results"
    __table_args__ = (UniqueConstraint("run_id", "policy", name="uq_run_results_run_id_policy"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    policy: Mapped[str] = mapped_column(String(64))
    makespan: Mapped[float]
    mean_flow_time: Mapped[float]
    energy: Mapped[float]
    cost: Mapped[float]
    mean_utilization: Mapped[float]
    # Per device: {"cpu0": 0.93, ..., "gpu1": 0.41}
    utilization: Mapped[dict[str, Any]]
    # Added with the full core; None for results recorded before it (and for SLR / speedup when
    # undefined, gap_to_oracle when oracle was not in the run).
    p95_flow_time: Mapped[float | None]
    slr: Mapped[float | None]
    speedup: Mapped[float | None]
    gap_to_oracle: Mapped[float | None]
    # Added with ranked results; None for results recorded before them. rank: 1 = best by the
    # run's rank_by. mean_slowdown: mean of flow time / the task's fastest possible time (>= 1).
    # lower_bound: a makespan no schedule of the run can beat (s); gap_to_bound: relative to it.
    mean_slowdown: Mapped[float | None]
    lower_bound: Mapped[float | None]
    gap_to_bound: Mapped[float | None]
    rank: Mapped[int | None]
    # The digest of the policy's per-task schedule (Schedule.digest: XXH3-128, sha256 before
    # 2026-12-07; Schedule.matches reads both): a schedule recomputed on read
    # from the run's spec and seed is shown only if it matches. None for results recorded before
    # schedules were recomputed (those runs stored them all in run_schedules).
    schedule_digest: Mapped[str | None] = mapped_column(String(64))


class RunSchedule(Base):
    """One policy's per-task schedule in one run: numpy arrays in an .npz (no pickle). Kept only
    for a policy whose schedule depends on more than the run's spec and seed (services/runs.py:
    learned, a warm-started rl, a fitted kernel model) and for runs recorded before schedules were
    recomputed on read; runs up to settings.schedule_max_tasks tasks."""

    __tablename__ = "run_schedules"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[str] = mapped_column(String(64), primary_key=True)
    num_tasks: Mapped[int]
    devices: Mapped[list[str]] = mapped_column(JSONB)
    arrays: Mapped[bytes] = mapped_column(LargeBinary)


class PolicyState(Base):
    """Parameters a learning policy (rl) saved after a run; the highest version is the latest."""

    __tablename__ = "policy_states"
    __table_args__ = (
        UniqueConstraint("policy", "version", name="uq_policy_states_policy_version"),
        Index("ix_policy_states_run_id", "run_id"),  # deleting a run looks its rows up
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    state: Mapped[dict[str, Any]]
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TrainingSampleSet(Base):
    """The training samples of one run (db/packed.py): what it observed about each sampled task
    on each kind of device — the features a performance model reads, the execution time, and
    where oracle ran and split the task, the GPU share it gave. Each sample keeps its own id from
    the `training_sample_ids` sequence (newest = largest). The packed columns are stored
    uncompressed (STORAGE EXTERNAL, migrations 0016 and 0019)."""

    __tablename__ = "training_sample_sets"
    __table_args__ = (
        Index("ix_training_sample_sets_last_id", "last_id"),
        Index("ix_training_sample_sets_run_id", "run_id"),  # deleting a run looks its rows up
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    count: Mapped[int]
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    #: The items' ids packed (IDS), for sets written before ids came in consecutive blocks;
    #: None: they are first_id..last_id (db/packed.py, `item_ids`).
    ids: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The samples' features: each sampled task's (float64 (tasks, TASK_FEATURES)) and each
    #: device model's (float64 (models, DEVICE_FEATURES)) once, the samples being every (model,
    #: task) pair, model first (ml/training.RunSamples); sets written before stored each
    #: sample's (`features`, float64 (count, FEATURE_NAMES)) and have none of the two.
    task_features: Mapped[bytes | None] = mapped_column(LargeBinary)
    device_features: Mapped[bytes | None] = mapped_column(LargeBinary)
    features: Mapped[bytes | None] = mapped_column(LargeBinary)
    device_kind: Mapped[bytes] = mapped_column(LargeBinary)  # int16: 0 CPU core, 1 GPU
    seconds: Mapped[bytes] = mapped_column(LargeBinary)  # float64
    oracle_share: Mapped[bytes] = mapped_column(LargeBinary)  # float64, NaN: oracle did not split


class JobStatus(LifecycleStatus):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"


class TrainingJob(Attempted, Base):
    """One retraining: nightly (beat), manual (API) or automatic (after enough new samples).
    `slot` is unique: a second fire of the same schedule slot finds the first job."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        JobStatus.check_constraint(),
        Index("ix_training_jobs_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    trigger: Mapped[str] = mapped_column(String(16))  # nightly, manual, auto
    # The admin key that asked for a manual retrain; None for nightly and automatic ones.
    tenant: Mapped[str | None] = mapped_column(String(64))
    slot: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    message: Mapped[str | None] = mapped_column(Text)  # the outcome, or the error
    model_version: Mapped[int | None]

    ERROR_COLUMN = "message"


class ModelVersion(Base):
    """A trained performance model: how it was trained, how it scored on its holdout (and how the
    active model scored on the same holdout), and its artifact (skops, verified by digest)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint("status IN ('promoted', 'rejected')", name="status_known"),
        # At most one active version.
        Index("uq_model_versions_active", "is_active", unique=True, postgresql_where="is_active"),
    )

    version: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]]
    window_first_sample: Mapped[int] = mapped_column(BigInteger)
    window_last_sample: Mapped[int] = mapped_column(BigInteger)
    sample_count: Mapped[int]
    holdout_count: Mapped[int]
    metrics: Mapped[dict[str, Any]]
    artifact_format: Mapped[str] = mapped_column(String(16))
    artifact_digest: Mapped[str] = mapped_column(String(64))
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("training_jobs.id", ondelete="SET NULL")
    )
    trained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float]


class ApiKey(Base):
    """A key created with `hms keys create`: its name is the tenant; only its sha256 digest is
    kept (keys are 256 random bits, so a fast hash is enough). At most one active key per name:
    rotating a key is revoke + create, and the tenant keeps its work."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index(
            "uq_api_keys_active_name", "name", unique=True, postgresql_where="revoked_at IS NULL"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KernelProfile(Base):
    """A kernel profile a tenant uploaded (docs/profiles.md): the validated document as given,
    and its summary, computed once at upload so a listing reads no documents. Names are unique
    per tenant; the shipped profiles are package data, not rows."""

    __tablename__ = "kernel_profiles"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_kernel_profiles_tenant_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]]
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class KernelObservationSet(Base):
    """The kernel executions one run observed (perfmodels.observed_once), packed (db/packed.py):
    what the performance models of its tenant, profile and contention learn from. Each execution
    keeps its own id from the `kernel_observation_ids` sequence (newest = largest); the packed
    columns are stored uncompressed (STORAGE EXTERNAL, migration 0016). Deleted with its run
    (runs.delete_runs; the schema would keep it, as it keeps training samples)."""

    __tablename__ = "kernel_observation_sets"
    __table_args__ = (
        Index(
            "ix_kernel_observation_sets_tenant_profile_contention_last_id",
            "tenant",
            "profile",
            "contention",
            "last_id",
        ),
        Index("ix_kernel_observation_sets_run_id", "run_id"),  # deleting a run looks its rows up
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    contention: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    count: Mapped[int]
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    #: The items' ids packed (IDS), for sets written before ids came in consecutive blocks;
    #: None: they are first_id..last_id (db/packed.py, `item_ids`).
    ids: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The distinct kernels and kinds of device ("cpu", "gpu") of the set, sorted; `kernel` and
    #: `device_kind` index into them (int16 each).
    kernels: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    device_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(8)))
    kernel: Mapped[bytes] = mapped_column(LargeBinary)
    device_kind: Mapped[bytes] = mapped_column(LargeBinary)
    #: The distinct (kernel, device kind) pairs, "kernel device" each: what observed_kernels reads.
    pairs: Mapped[list[str]] = mapped_column(ARRAY(String(41)))
    tile_size: Mapped[bytes] = mapped_column(LargeBinary)  # int64
    seconds: Mapped[bytes] = mapped_column(LargeBinary)  # float64


class KernelModelFit(Base):
    """A performance model fitted on a tenant's observations of one (profile, contention): the
    newest `observation_count` of them up to `newest_observation_id`, so one fit per model and
    set of observations; versions count from 1 per (tenant, profile, contention, model). `state`
    is the model's JSON (perfmodels.to_state); a `learned` fit's estimator is `artifact` (skops,
    verified by `state["artifact_digest"]`)."""

    __tablename__ = "kernel_model_fits"
    __table_args__ = (
        UniqueConstraint(
            "tenant",
            "profile",
            "contention",
            "model",
            "version",
            name="uq_kernel_model_fits_version",
        ),
        UniqueConstraint(
            "tenant",
            "profile",
            "contention",
            "model",
            "newest_observation_id",
            "observation_count",
            name="uq_kernel_model_fits_observations",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    contention: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    observation_count: Mapped[int]
    newest_observation_id: Mapped[int] = mapped_column(BigInteger)  # 0: no observation
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fit_s: Mapped[float]
    state: Mapped[dict[str, Any]]
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary)
