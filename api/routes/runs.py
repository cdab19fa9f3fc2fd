"""/api/v1/runs: submit, read, list and cancel simulation runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from api.deps import Caller, Queue, RunId
from api.errors import AUTH, responses
from api.limits import check_submission_rate
from api.links import BODY_ID, link, linked
from api.schemas import (
    DeviceUsage,
    PolicyResultOut,
    RunOut,
    RunPage,
    RunResultsOut,
    ScheduledTask,
    ScheduleOut,
)
from app.db.models import RunStatus
from app.db.runs import StudyFilter
from app.ml.bootstrap import BOOTSTRAP_VERSION
from app.runspec import PolicyName, RunSpec
from app.services import runs, schedules
from app.services.schedule_export import schedule_csv, schedule_rows

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

MAX_PAGE = 100

RUN_PATH = f"{router.prefix}/{{run_id}}"
#: From an answer that is a run (RunOut) to what may be asked of that run next.
RUN_LINKS = {
    "GetRun": link("GET", RUN_PATH, run_id=BODY_ID),
    "GetRunResults": link("GET", f"{RUN_PATH}/results", run_id=BODY_ID),
    "GetRunSchedule": link("GET", f"{RUN_PATH}/schedule", run_id=BODY_ID),
    "WatchRun": link("GET", f"{RUN_PATH}/events", run_id=BODY_ID),
    "CancelRun": link("POST", f"{RUN_PATH}/cancel", run_id=BODY_ID),
    "DeleteRun": link("DELETE", RUN_PATH, run_id=BODY_ID),
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={**linked(202, RUN_LINKS), **responses(400, *AUTH, 413, 429, 503)},
)
def submit(
    spec: RunSpec,
    response: Response,
    queue: Queue,
    tenant: Caller,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> RunOut:
    check_submission_rate(tenant.key_id)
    submission = runs.submit_run(tenant, spec, queue, idempotency_key)
    response.headers["Location"] = f"{router.prefix}/{submission.run.id}"
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    return RunOut.model_validate(submission.run)


@router.get("", response_model=RunPage, responses=responses(*AUTH, 503))
def list_runs(
    tenant: Caller,
    status_filter: Annotated[RunStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    study_id: Annotated[
        StudyFilter,
        Query(description="Only this study's runs; `none`: only the runs of no study (lone runs)."),
    ] = None,
) -> RunPage:
    """Your runs (an admin key: everyone's), newest first."""
    items, total = runs.list_runs(tenant, status_filter, limit, offset, study_id)
    return RunPage(
        items=[RunOut.model_validate(run) for run in items], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{run_id}",
    response_model=RunOut,
    responses={**linked(200, RUN_LINKS), **responses(*AUTH, 404, 503)},
)
def get_run(run_id: RunId, tenant: Caller) -> RunOut:
    """A run of yours (another tenant's is a 404)."""
    return RunOut.model_validate(runs.get_run(tenant, run_id))


@router.get(
    "/{run_id}/results", response_model=RunResultsOut, responses=responses(*AUTH, 404, 409, 503)
)
def get_results(run_id: RunId, tenant: Caller) -> RunResultsOut:
    """The leaderboard: one result per policy, best first by the run's `rank_by` metric."""
    run, results = runs.get_results(tenant, run_id)
    return RunResultsOut(
        run_id=run.id,
        status=run.status,
        rank_by=run.rank_by,
        results=[PolicyResultOut.ranked(result, run.rank_by) for result in results],
        model_version=run.model_version,
        perf_model_version=run.perf_model_version,
        model_note=model_note(run.model_version),
    )


def model_note(version: str | None) -> str | None:
    if version == BOOTSTRAP_VERSION:
        return (
            "no trained model version was active: learned used the bootstrap model, trained on a "
            "generated profiling set"
        )
    return None


@router.post(
    "/{run_id}/cancel",
    response_model=RunOut,
    responses={**linked(200, RUN_LINKS), **responses(*AUTH, 404, 409, 503)},
)
def cancel(run_id: RunId, queue: Queue, tenant: Caller) -> RunOut:
    """Cancel a queued or running run (409 once it ended); it stays readable."""
    return RunOut.model_validate(runs.cancel_run(tenant, run_id, queue))


@router.delete(
    "/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(*AUTH, 404, 409, 503),
)
def delete(run_id: RunId, tenant: Caller) -> Response:
    """Delete a run that ended, with its results, schedules and training samples (409 while it
    is queued or running, or when it belongs to a study); afterwards it is a 404."""
    runs.delete_run(tenant, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{run_id}/schedule",
    response_model=ScheduleOut,
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
        **responses(*AUTH, 404, 409, 503),
    },
)
def get_schedule(
    run_id: RunId,
    tenant: Caller,
    policy: Annotated[PolicyName, Query(description="Whose schedule.")],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ScheduleOut | Response:
    """Where and when each task ran (JSON pages, or the whole schedule as CSV), and how busy
    each device was: recomputed from the run's spec and seed, and 409 if that no longer gives
    the run's schedule bit for bit (the simulator changed since)."""
    devices, schedule = schedules.get_schedule(tenant, run_id, policy)
    if format == "csv":
        return Response(schedule_csv(devices, schedule), media_type="text/csv")
    window = range(offset, min(offset + limit, schedule.num_tasks))
    busy = schedule.busy_time(len(devices))
    return ScheduleOut(
        run_id=run_id,
        policy=policy,
        num_tasks=schedule.num_tasks,
        devices=[
            DeviceUsage(device=name, tasks=len(schedule.tasks_on(d)), busy_s=float(busy[d]))
            for d, name in enumerate(devices)
        ],
        tasks=[ScheduledTask(**row) for row in schedule_rows(devices, schedule, window)],
        limit=limit,
        offset=offset,
    )
