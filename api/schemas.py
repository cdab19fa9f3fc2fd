"""Response bodies. Request bodies are app.runspec.RunSpec itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    priority: int
    progress: float
    attempts: int
    error: str | None
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    model_version: str | None = Field(description="The performance model `learned` used.")
    rl_state_version: int | None = Field(description="The saved rl parameters it started from.")


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class PolicyResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    policy: str
    makespan: float
    mean_flow_time: float
    energy: float
    cost: float
    mean_utilization: float
    utilization: dict[str, float]
    p95_flow_time: float | None
    slr: float | None
    speedup: float | None
    gap_to_oracle: float | None


class RunResultsOut(BaseModel):
    run_id: uuid.UUID
    status: str
    results: list[PolicyResultOut]
    model_version: str | None = Field(description="The performance model `learned` used.")
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


class PolicyOut(BaseModel):
    name: str
    summary: str


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


class TrainingJobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    trigger: str
    slot: str | None
    status: str
    progress: float
    attempts: int
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
