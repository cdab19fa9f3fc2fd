"""/api/v1/studies: submit a grid of runs, watch it, read its statistics, cancel it."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from api.deps import ApiKey, Queue
from api.errors import AUTH, responses
from api.limits import check_submission_rate
from api.schemas import StudyOut, StudyPage, StudyResultsOut
from app.db.models import StudyStatus
from app.services import studies
from app.studies.spec import StudySpec
from app.studies.statistics import statistics_rows

router = APIRouter(prefix="/api/v1/studies", tags=["studies"])

MAX_PAGE = 100


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StudyOut,
    responses=responses(400, *AUTH, 413, 429, 503),
)
def submit(
    spec: StudySpec,
    response: Response,
    queue: Queue,
    api_key: ApiKey,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> StudyOut:
    """Every (cell, repetition) becomes a run; the study counts as one submission."""
    check_submission_rate(api_key)
    submission = studies.submit_study(spec, queue, idempotency_key)
    response.headers["Location"] = f"{router.prefix}/{submission.study.id}"
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    return StudyOut.of(studies.get_study(submission.study.id))


@router.get("", response_model=StudyPage, responses=responses(503))
def list_studies(
    status_filter: Annotated[StudyStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> StudyPage:
    views, total = studies.list_studies(status_filter, limit, offset)
    return StudyPage(items=[StudyOut.of(v) for v in views], total=total, limit=limit, offset=offset)


@router.get("/{study_id}", response_model=StudyOut, responses=responses(404, 503))
def get_study(study_id: uuid.UUID) -> StudyOut:
    return StudyOut.of(studies.get_study(study_id))


@router.get(
    "/{study_id}/results",
    response_model=StudyResultsOut,
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
        **responses(404, 409, 503),
    },
)
def get_results(
    study_id: uuid.UUID, format: Annotated[Literal["json", "csv"], Query()] = "json"
) -> StudyResultsOut | Response:
    """The statistics, once every run ended (409 before)."""
    study, statistics = studies.get_statistics(study_id)
    if format == "csv":
        return Response(_csv(statistics_rows(statistics)), media_type="text/csv")
    return StudyResultsOut(study_id=study.id, status=study.status, statistics=statistics)


@router.post(
    "/{study_id}/cancel", response_model=StudyOut, responses=responses(*AUTH, 404, 409, 503)
)
def cancel(study_id: uuid.UUID, _: ApiKey) -> StudyOut:
    """Cancel the study and every run of it not yet ended."""
    return StudyOut.of(studies.cancel_study(study_id))


@router.delete("/{study_id}", response_model=StudyOut, responses=responses(*AUTH, 404, 409, 503))
def delete(study_id: uuid.UUID, _: ApiKey) -> StudyOut:
    """As for runs: cancels (the study and its runs stay readable)."""
    return StudyOut.of(studies.cancel_study(study_id))


def _csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
