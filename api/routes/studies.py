"""/api/v1/studies: submit a grid of runs, watch it, read its statistics, cancel it."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from api.deps import Caller, Queue, StudyId
from api.errors import AUTH, responses
from api.limits import check_submission_rate
from api.links import BODY_ID, link, linked
from api.routes.runs import router as runs_router
from api.schemas import StudyDeletionOut, StudyOut, StudyPage, StudyResultsOut
from app.db.models import StudyStatus
from app.services import studies
from app.studies.spec import StudySpec
from app.studies.statistics import statistics_rows

router = APIRouter(prefix="/api/v1/studies", tags=["studies"])

MAX_PAGE = 100

STUDY_PATH = f"{router.prefix}/{{study_id}}"
#: From an answer that is a study (StudyOut) to what may be asked of that study next.
STUDY_LINKS = {
    "GetStudy": link("GET", STUDY_PATH, study_id=BODY_ID),
    "GetStudyResults": link("GET", f"{STUDY_PATH}/results", study_id=BODY_ID),
    "ListStudyRuns": link("GET", runs_router.prefix, study_id=BODY_ID),
    "WatchStudy": link("GET", f"{STUDY_PATH}/events", study_id=BODY_ID),
    "CancelStudy": link("POST", f"{STUDY_PATH}/cancel", study_id=BODY_ID),
    "DeleteStudy": link("DELETE", STUDY_PATH, study_id=BODY_ID),
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StudyOut,
    responses={**linked(202, STUDY_LINKS), **responses(400, *AUTH, 413, 429, 503)},
)
def submit(
    spec: StudySpec,
    response: Response,
    queue: Queue,
    tenant: Caller,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> StudyOut:
    """Every (cell, repetition) becomes a run; the study counts as one submission."""
    check_submission_rate(tenant.key_id)
    submission = studies.submit_study(tenant, spec, queue, idempotency_key)
    response.headers["Location"] = f"{router.prefix}/{submission.study.id}"
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    return StudyOut.of(studies.get_study(tenant, submission.study.id))


@router.get("", response_model=StudyPage, responses=responses(*AUTH, 503))
def list_studies(
    tenant: Caller,
    status_filter: Annotated[StudyStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> StudyPage:
    """Your studies (an admin key: everyone's), newest first."""
    views, total = studies.list_studies(tenant, status_filter, limit, offset)
    return StudyPage(items=[StudyOut.of(v) for v in views], total=total, limit=limit, offset=offset)


@router.get(
    "/{study_id}",
    response_model=StudyOut,
    responses={**linked(200, STUDY_LINKS), **responses(*AUTH, 404, 503)},
)
def get_study(study_id: StudyId, tenant: Caller) -> StudyOut:
    return StudyOut.of(studies.get_study(tenant, study_id))


@router.get(
    "/{study_id}/results",
    response_model=StudyResultsOut,
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
        **responses(*AUTH, 404, 409, 503),
    },
)
def get_results(
    study_id: StudyId,
    tenant: Caller,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> StudyResultsOut | Response:
    """The statistics, once every run ended (409 before)."""
    study, statistics = studies.get_statistics(tenant, study_id)
    if format == "csv":
        return Response(_csv(statistics_rows(statistics)), media_type="text/csv")
    return StudyResultsOut(study_id=study.id, status=study.status, statistics=statistics)


@router.post(
    "/{study_id}/cancel",
    response_model=StudyOut,
    responses={**linked(200, STUDY_LINKS), **responses(*AUTH, 404, 409, 503)},
)
def cancel(study_id: StudyId, tenant: Caller) -> StudyOut:
    """Cancel the study and every run of it not yet ended; it stays readable."""
    return StudyOut.of(studies.cancel_study(tenant, study_id))


@router.delete(
    "/{study_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StudyDeletionOut,
    responses=responses(*AUTH, 404, 409, 503),
)
def delete(study_id: StudyId, tenant: Caller, queue: Queue) -> StudyDeletionOut:
    """Delete a study that ended or was cancelled, with all its runs and what they recorded
    (409 while it runs). It is hidden at once: from then on a 404 (a repeated DELETE too) and
    gone from lists; a worker deletes its rows in the background, in batches."""
    deletion = studies.delete_study(tenant, study_id, queue)
    detail = f"study deleted; its {deletion.runs} runs are being removed in the background"
    return StudyDeletionOut(id=study_id, status="deleting", runs=deletion.runs, detail=detail)


def _csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
