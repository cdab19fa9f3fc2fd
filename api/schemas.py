"""Response bodies. Request bodies are app.runspec.RunSpec, app.studies.spec.StudySpec and
app.profilespec.ProfileSpec themselves."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.db.models import RunResult
from app.profilespec import ProfileSpec
from app.tenancy import NAME_PATTERN


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    priority: int
    tenant: str | None = Field(description="The API key's name that submitted it.")
    progress: float
    phase: str | None = Field(
        default=None,
        description='The phase its worker last reported: "building the workload", '
        '"simulating heft (3/9)", "computing metrics (3/9)", "storing results" (for a run that '
        "failed or was cancelled, where it stopped); null before the first report and once it "
        "succeeded.",
    )
    attempts: int
    worker: str | None = Field(
        default=None,
        description='The Celery worker of its latest attempt ("celery@worker1"): with workers '
        "on several hosts, where it ran. Null before its first attempt.",
    )
    error: str | None
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    model_version: str | None = Field(description="The performance model `learned` used.")
    rl_state_version: int | None = Field(description="The saved rl parameters it started from.")
    perf_model_version: int | None = Field(
        default=None,
        description="The fitted version of `spec.perf_model` the runtime schedulers decided with "
        "(GET /api/v1/perf-models); null when none was used.",
    )
    num_tasks: int | None = Field(
        default=None,
        description="How many tasks it simulated, once it succeeded (null for runs recorded "
        "before this was kept).",
    )
    study_id: uuid.UUID | None = Field(default=None, description="The study it belongs to.")
    study_cell: int | None = Field(default=None, description="Its cell in the study's grid.")
    study_repetition: int | None = Field(default=None, description="Its repetition (0..).")


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


RANK_BY = (
    "The metric the run's results are ranked by (makespan, mean_flow_time, p95_flow_time, "
    "mean_slowdown, energy or cost; lower is better). Null for runs recorded before results "
    "were ranked."
)


class PolicyResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    policy: str
    rank: int | None = Field(
        description="1 = best by `rank_by`. Null for results recorded before runs were ranked."
    )
    # Not stored per result: filled from the run by `ranked`.
    rank_by: str | None = Field(default=None, description=RANK_BY)
    rank_value: float | None = Field(
        default=None, description="This result's value of `rank_by` (lower is better)."
    )
    makespan: float = Field(description="End of the last task (s), the simulation starting at 0.")
    mean_flow_time: float = Field(description="Mean of end - arrival over the tasks (s).")
    energy: float = Field(description="Joules.")
    cost: float
    mean_utilization: float
    utilization: dict[str, float] = Field(description="Busy share per device.")
    p95_flow_time: float | None
    mean_slowdown: float | None = Field(
        description="Mean of flow time / the task's fastest possible time (>= 1). Null for "
        "results recorded before it."
    )
    lower_bound: float | None = Field(
        description="A makespan (s) no schedule of this run can beat. Null for results recorded "
        "before it."
    )
    gap_to_bound: float | None = Field(
        description="(makespan - lower_bound) / lower_bound. Null for results recorded before it."
    )
    slr: float | None
    speedup: float | None
    gap_to_oracle: float | None

    @classmethod
    def ranked(cls, result: RunResult, rank_by: str | None) -> PolicyResultOut:
        """A stored result with its run's rank metric and its own value of that metric."""
        out = cls.model_validate(result)
        if rank_by is None:
            return out
        return out.model_copy(update={"rank_by": rank_by, "rank_value": getattr(out, rank_by)})


class RunResultsOut(BaseModel):
    run_id: uuid.UUID
    status: str
    rank_by: str | None = Field(description=RANK_BY)
    results: list[PolicyResultOut] = Field(
        description="One per policy, best first: by rank (then makespan, for runs recorded "
        "before results were ranked)."
    )
    model_version: str | None = Field(description="The performance model `learned` used.")
    perf_model_version: int | None = Field(
        default=None,
        description="The fitted version of `spec.perf_model` the runtime schedulers decided with.",
    )
    model_note: str | None = Field(description="Why, when it was not a trained version.")


class ScheduledTask(BaseModel):
    task: int
    device: str
    partner: str | None = Field(description="The CPU core running the rest of a split task.")
    gpu_fraction: float
    start: float
    end: float


class DeviceUsage(BaseModel):
    device: str
    tasks: int
    busy_s: float


class ScheduleOut(BaseModel):
    run_id: uuid.UUID
    policy: str
    num_tasks: int
    devices: list[DeviceUsage]
    tasks: list[ScheduledTask]
    limit: int
    offset: int


class KernelModelOut(BaseModel):
    name: str
    summary: str
    paper: str | None = Field(default=None, description="null: this project's own")


class PolicyOut(BaseModel):
    name: str
    summary: str
    paper: str | None = Field(
        default=None,
        description="The paper the policy comes from; null for this project's own policies "
        "and the baselines.",
    )
    knows: str = Field(
        description='What it decides on with `knowledge: "estimated"` (the default), e.g. '
        "nominal estimates, its model's predictions, what it has observed, or the truth. With "
        '`knowledge: "clairvoyant"` every policy decides on the truth.'
    )


class ReadinessOut(BaseModel):
    status: str
    checks: dict[str, str]


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    status: str = Field(description="promoted or rejected")
    is_active: bool
    reason: str
    algorithm: str
    params: dict[str, Any]
    window_first_sample: int
    window_last_sample: int
    sample_count: int
    holdout_count: int
    metrics: dict[str, Any] = Field(
        description="Holdout MAE / R² of ln seconds, overall and per target, for the candidate and "
        "for the model active at the time on the same holdout."
    )
    artifact_format: str
    artifact_digest: str
    job_id: uuid.UUID | None
    trained_at: datetime
    duration_s: float


class KernelModelFitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tenant: str
    profile: str = Field(description="The kernel profile the observations were made on.")
    contention: str = Field(description="alone or all_busy: which CPU timings were the truth.")
    model: str = Field(description="history, regression, nl_regression or learned")
    version: int = Field(description="Counts from 1 per tenant, profile, contention and model.")
    observation_count: int = Field(description="The observations it was fitted on.")
    newest_observation_id: int = Field(description="The newest of them (0: none).")
    fitted_at: datetime
    fit_s: float = Field(description="Seconds the fit took.")
    state: dict[str, Any] = Field(
        description="The fitted model as JSON: history's [kernel, size, device, mean s, count] "
        "entries, the regressions' [kernel, device, a, p(, c)] coefficients, learned's "
        "parameters and its estimator's sha256 digest (the estimator is stored apart)."
    )


class KernelModelFitPage(BaseModel):
    items: list[KernelModelFitOut]
    total: int
    limit: int
    offset: int


class TrainingJobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    trigger: str
    tenant: str | None = Field(description="Who asked for it; null: nightly or automatic.")
    slot: str | None
    status: str
    progress: float
    attempts: int
    worker: str | None = Field(
        default=None, description="The Celery worker of its latest attempt (RunOut.worker)."
    )
    message: str | None
    model_version: int | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TrainingJobPage(BaseModel):
    items: list[TrainingJobOut]
    total: int
    limit: int
    offset: int


class ErrorOut(BaseModel):
    detail: str


class UnavailableDetail(BaseModel):
    dependency: str = Field(description="database or broker")
    message: str


class UnavailableOut(BaseModel):
    detail: UnavailableDetail


class StudyOut(BaseModel):
    id: uuid.UUID
    name: str
    status: str = Field(description="running, succeeded (aggregated) or cancelled")
    priority: int
    tenant: str | None = Field(description="The API key's name that submitted it.")
    total_runs: int
    runs_created: int = Field(
        description="Runs recorded so far. Below total_runs while the study's fan-out is "
        "creating its runs (its runs not created yet count as queued in `counts`), or when it "
        "was cancelled before they all were (they count as cancelled)."
    )
    finished_runs: int = Field(description="Runs that ended: succeeded, failed or cancelled.")
    progress: float = Field(description="finished_runs / total_runs")
    counts: dict[str, int] = Field(description="The study's runs by status.")
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, view: Any) -> StudyOut:
        """From services.studies.StudyView."""
        study = view.study
        return cls(
            id=study.id,
            name=study.name,
            status=study.status,
            priority=study.priority,
            tenant=study.tenant,
            total_runs=study.total_runs,
            runs_created=study.runs_created,
            finished_runs=view.finished_runs,
            progress=view.progress,
            counts=view.counts,
            spec=study.spec,
            created_at=study.created_at,
            updated_at=study.updated_at,
            finished_at=study.finished_at,
        )


class StudyPage(BaseModel):
    items: list[StudyOut]
    total: int
    limit: int
    offset: int


class StudyDeletionOut(BaseModel):
    id: uuid.UUID
    status: str = Field(
        description="`deleting`: hidden from now on (a 404, gone from lists); its rows are "
        "removed in the background"
    )
    runs: int = Field(description="The study's runs, deleted with it in the background.")
    detail: str


class StudyResultsOut(BaseModel):
    study_id: uuid.UUID
    status: str
    statistics: dict[str, Any] = Field(
        description="Per cell: run counts by status, the best policy by rank_by, and per policy "
        "its wins and per metric n, mean, std and the 95 % CI (Student t); for every policy but "
        "the best, the paired difference to the best in rank_by with its CI, paired-t and "
        "Wilcoxon p-values (README: Studies)."
    )


class KeyIn(BaseModel):
    name: str = Field(
        pattern=NAME_PATTERN.pattern,
        description="The tenant the key stands for: what it submits is its own.",
    )
    admin: StrictBool = Field(
        default=False,
        description="An admin key sees every tenant's work, retrains, activates model versions "
        "and manages keys.",
    )


class KeyOut(BaseModel):
    name: str
    admin: bool
    source: str = Field(description="environment (HMS_API_KEYS) or database (hms keys create)")
    created_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: Any) -> KeyOut:
        """From services.keys.KeyInfo."""
        return cls(
            name=info.name,
            admin=info.is_admin,
            source=info.source,
            created_at=info.created_at,
            revoked_at=info.revoked_at,
        )


class KeyCreatedOut(KeyOut):
    key: str = Field(description="The key itself: shown this once, only its digest is kept.")


class ProfileSummaryOut(BaseModel):
    """A kernel profile in a listing (services.profiles.ProfileSummary)."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    shipped: bool = Field(description="Shipped with the package: every tenant may read it.")
    tenant: str | None = Field(description="Who uploaded it; null for a shipped profile.")
    created_at: datetime | None = Field(description="When it was uploaded; null if shipped.")
    source: str = Field(description="provenance.source: measured or published.")
    description: str
    date: str = Field(description="provenance.date: when it was measured or published.")
    kernels: list[str] = Field(description="The kernels it times.")
    devices: list[str] = Field(description="Its devices' kinds.")
    min_size: int = Field(description="The smallest tile edge b timed.")
    max_size: int = Field(description="The largest tile edge b timed.")
    timings: int = Field(description="How many timings it has.")


class ProfileOut(ProfileSummaryOut):
    """A kernel profile whole: its summary and its document (docs/profiles.md)."""

    document: ProfileSpec


class DeletedEventData(BaseModel):
    """The `data` of an `event: deleted`: what was deleted while it was watched; the first field
    of every event's data."""

    model_config = ConfigDict(extra="forbid")  # the schema lists every field sent

    id: uuid.UUID


class RunEventData(DeletedEventData):
    """The `data` of a run's `state` event (app/services/events.py `run_state`)."""

    status: str
    progress: float = Field(description="0..1")
    phase: str | None = Field(description="The phase its worker last reported (RunOut.phase).")
    attempts: int
    error: str | None
    updated_at: datetime


class StudyEventData(DeletedEventData):
    """The `data` of a study's `state` event (app/services/events.py `study_state`)."""

    status: str
    progress: float = Field(description="ended runs / all runs")
    total_runs: int
    finished_runs: int
    counts: dict[str, int] = Field(description="The study's runs by status.")
    updated_at: datetime = Field(description="The newest change of the study or of a run.")
