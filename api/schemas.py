"""Response bodies. Request bodies are app.runspec.RunSpec itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


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


class RunResultsOut(BaseModel):
    run_id: uuid.UUID
    status: str
    results: list[PolicyResultOut]


class ReadinessOut(BaseModel):
    status: str
    checks: dict[str, str]
