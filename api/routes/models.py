"""/api/v1/models: the performance models `learned` uses, and retraining them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import Caller, JobId, Queue
from api.errors import AUTH, responses
from api.links import BODY_ID, link, linked
from api.schemas import ModelVersionOut, TrainingJobOut, TrainingJobPage
from app.services import training

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.post(
    "/retrain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TrainingJobOut,
    responses={
        **linked(
            202, {"GetRetrain": link("GET", f"{router.prefix}/retrains/{{job_id}}", job_id=BODY_ID)}
        ),
        **responses(*AUTH, 503),
    },
)
def retrain(response: Response, queue: Queue, tenant: Caller) -> TrainingJobOut:
    """Retrain now (on the `training` queue; admin keys only); follow the job at its Location."""
    job = training.request_retrain(tenant, queue)
    response.headers["Location"] = f"{router.prefix}/retrains/{job.id}"
    return TrainingJobOut.model_validate(job)


@router.get("/retrains", response_model=TrainingJobPage, responses=responses(*AUTH, 503))
def list_retrains(
    tenant: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TrainingJobPage:
    """The retrain jobs you asked for (an admin key: all, nightly and automatic ones too)."""
    jobs, total = training.list_jobs(tenant, limit, offset)
    return TrainingJobPage(
        items=[TrainingJobOut.model_validate(job) for job in jobs],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/retrains/{job_id}", response_model=TrainingJobOut, responses=responses(*AUTH, 404, 503)
)
def get_retrain(job_id: JobId, tenant: Caller) -> TrainingJobOut:
    return TrainingJobOut.model_validate(training.get_job(tenant, job_id))


@router.get("", response_model=list[ModelVersionOut], responses=responses(*AUTH, 503))
def list_models(_: Caller) -> list[ModelVersionOut]:
    """Every registered version, newest first, with its metrics and whether it is active."""
    return [ModelVersionOut.model_validate(v) for v in training.list_versions()]


@router.get("/{version:int}", response_model=ModelVersionOut, responses=responses(*AUTH, 404, 503))
def get_model(version: int, _: Caller) -> ModelVersionOut:
    return ModelVersionOut.model_validate(training.get_version(version))


@router.post(
    "/{version:int}/activate", response_model=ModelVersionOut, responses=responses(*AUTH, 404, 503)
)
def activate(version: int, tenant: Caller) -> ModelVersionOut:
    """Make this version the one `learned` uses (a manual rollback or roll forward; admin keys
    only: every tenant shares the model)."""
    return ModelVersionOut.model_validate(training.activate_version(tenant, version))
