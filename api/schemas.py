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
