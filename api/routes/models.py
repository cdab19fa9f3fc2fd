"""/api/v1/models: the performance models `learned` uses, and retraining them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import ApiKey, Queue
from api.errors import AUTH, responses
from api.schemas import ModelVersionOut, TrainingJobOut, TrainingJobPage
from app.services import training

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.post(
    "/retrain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TrainingJobOut,
    responses=responses(*AUTH, 503),
)
def retrain(response: Response, queue: Queue, _: ApiKey) -> TrainingJobOut:
    """Retrain now (on the `training` queue); follow the job at its Location."""
    job = training.request_retrain(queue)
    response.headers["Location"] = f"{router.prefix}/retrains/{job.id}"
    return TrainingJobOut.model_validate(job)


@router.get("/retrains", response_model=TrainingJobPage, responses=responses(503))
def list_retrains(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TrainingJobPage:
    jobs, total = training.list_jobs(limit, offset)
    return TrainingJobPage(
        items=[TrainingJobOut.model_validate(job) for job in jobs],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/retrains/{job_id}", response_model=TrainingJobOut, responses=responses(404, 503))
def get_retrain(job_id: uuid.UUID) -> TrainingJobOut:
    return TrainingJobOut.model_validate(training.get_job(job_id))


@router.get("", response_model=list[ModelVersionOut], responses=responses(503))
def list_models() -> list[ModelVersionOut]:
    """Every registered version, newest first, with its metrics and whether it is active."""
    return [ModelVersionOut.model_validate(v) for v in training.list_versions()]


@router.get("/{version:int}", response_model=ModelVersionOut, responses=responses(404, 503))
def get_model(version: int) -> ModelVersionOut:
    return ModelVersionOut.model_validate(training.get_version(version))


@router.post(
    "/{version:int}/activate", response_model=ModelVersionOut, responses=responses(*AUTH, 404, 503)
)
def activate(version: int, _: ApiKey) -> ModelVersionOut:
    """Make this version the one `learned` uses (a manual rollback or roll forward)."""
    return ModelVersionOut.model_validate(training.activate_version(version))
