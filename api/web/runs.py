"""The Runs page (the list and the submit form), a run's page, and its charts."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import get_queue
from api.limits import RateLimited, check_submission_rate
from api.routes.runs import model_note
from api.schemas import PolicyResultOut
from api.web import charts
from api.web.gantt import MAX_GANTT_TASKS, Categories, gantt_figure, utilization_figure
from api.web.listing import PAGE, Blank, list_context
from api.web.run_form import (
    CHOICES,
    FIELDS,
    MODEL_NOTES,
    POLICY_NOTES,
    RunForm,
    entered_in,
    form_address,
    read_form,
)
from api.web.session import SameOrigin, Viewer
from api.web.templating import render
from app.db import runs as run_store
from app.db.models import Run, RunStatus
from app.errors import (
    InvalidSpec,
    RunNotFound,
    ScheduleNotFound,
    ScheduleNotReproducible,
    TransientStoreError,
)
from app.runspec import RunSpec, build_problem
from app.services import runs, schedules
from app.services.profiles import run_profiles
from app.tenancy import Tenant

router = APIRouter(include_in_schema=False)

#: How many of the newest studies the list's study filter offers (besides those on the page).
FILTER_STUDIES = 20
#: Why a valid form was not submitted, by the code its address carries (`refused=`): the page
#: shows this text, not the address's, so that no link can put words on it.
REFUSALS = {
    "rate": "Too many submissions a minute with this API key: submit again in a minute.",
    "unavailable": (
        "The database or the broker is unavailable: the run may not have been submitted; see "
        "the list of runs before submitting it again."
    ),
}


@router.get("/")
def runs_page(
    request: Request,
    tenant: Viewer,
    status_filter: Annotated[RunStatus | None, Blank, Query(alias="status")] = None,
    study_id: Annotated[run_store.StudyFilter, Blank, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    submitted: uuid.UUID | None = None,
) -> Response:
    """The runs, newest first: all, a study's (`study_id`) or those of no study
    (`study_id=none`), by status; and the form to submit one."""
    items, total = runs.list_runs(tenant, status_filter, PAGE, offset, study_id)
    shown = {run.study_id for run in items if run.study_id is not None}
    if isinstance(study_id, uuid.UUID):
        shown.add(study_id)
    context = {
        **list_context(tenant, total, offset, status_filter, RunStatus),
        "runs": items,
        "current_study": str(study_id or ""),
        "no_study": run_store.NO_STUDY,
        "studies": runs.study_names(tenant, shown, FILTER_STUDIES),
        "submitted": submitted,
        **_form_context(RunForm()),
    }
    return render(request, "runs.html", context)


@router.get("/runs/new")
def new_run_page(request: Request, tenant: Viewer, refused: str = "") -> Response:
    """The form on its own: blank, or as a failed submit left it (form_address), its errors
    found again by the same checks. Reloading it re-posts nothing."""
    form = RunForm()
    if entered_in(request.query_params):
        form, spec = read_form(request.query_params, request.query_params.getlist("policies"))
        if spec is not None:
            try:
                runs.check_submission(tenant, spec)
            except InvalidSpec as exc:
                form.add_error(exc.location, str(exc))
    if refused in REFUSALS:
        form.add_error(("body",), REFUSALS[refused])
    return render(request, "run_new.html", {"tenant": tenant, **_form_context(form)})


@router.post("/runs", dependencies=[SameOrigin])
async def submit(request: Request, tenant: Viewer) -> Response:
    """Submit the form's run through the same service as POST /api/v1/runs and show it in the
    list; on an error redirect (303) to the form as entered, which shows each message next to
    its field (POST/redirect/GET: the address bar then holds a GET that reloads safely)."""
    data = await request.form()
    form, spec = read_form(
        {name: str(value) for name, value in data.items()},
        [str(p) for p in data.getlist("policies")],
    )
    refused = ""
    if spec is not None:
        try:
            check_submission_rate(tenant.key_id)
            run = runs.submit_run(tenant, spec, get_queue()).run
        except InvalidSpec as exc:
            form.add_error(exc.location, str(exc))
        except RateLimited:
            refused = "rate"
        except TransientStoreError:
            refused = "unavailable"
        else:
            return RedirectResponse(f"/?submitted={run.id}", status_code=status.HTTP_303_SEE_OTHER)
    address = form_address(form, refused)
    if address is not None:
        return RedirectResponse(address, status_code=status.HTTP_303_SEE_OTHER)
    # Too long for an address (a long JSON spec): the form at once. 200, not 422: it comes back
    # to be corrected (a browser logs a 4xx page as an error).
    if refused:
        form.add_error(("body",), REFUSALS[refused])
    return render(request, "run_new.html", {"tenant": tenant, **_form_context(form)})


def _form_context(form: RunForm) -> dict[str, Any]:
    return {
        "form": form,
        "fields": FIELDS,
        "choices": CHOICES,
        "policy_notes": POLICY_NOTES,
        "model_notes": MODEL_NOTES,
    }


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: uuid.UUID, tenant: Viewer) -> Response:
    try:
        run = runs.get_run(tenant, run_id)
        # Results exist once it succeeded (for good: succeeded is terminal); until then the
        # page shows its status.
        stored = runs.get_results(tenant, run_id)[1] if run.status == RunStatus.SUCCEEDED else []
        kept = schedules.available_schedules(tenant, run_id) if stored else []
    except RunNotFound:
        return not_found(request, tenant, f"run {run_id}")
    results = [PolicyResultOut.ranked(result, run.rank_by) for result in stored]
    context = {
        "tenant": tenant,
        "run": run,
        "results": results,
        "metrics": _columns(run.rank_by),
        "bars": charts.metric_bars(results),
        "utilization": charts.device_utilization(results) if results else None,
        "model_note": model_note(run.model_version),
        "num_tasks": run.num_tasks or _num_tasks(run),
        "max_gantt_tasks": MAX_GANTT_TASKS,
        **_schedules(run, results, kept),
    }
    return render(request, "run.html", context)


def _schedules(run: Run, results: list[PolicyResultOut], kept: list[str]) -> dict[str, Any]:
    """The policies whose schedules the page draws (`kept`, stored or recomputed: a run above
    schedule_max_tasks has none), the others, and why they have none."""
    not_kept = [result.policy for result in results if result.policy not in kept]
    reason = schedules.no_schedule_reason(run, kept) if not_kept else None
    return {"kept": kept, "not_kept": not_kept, "no_schedule": reason}


@router.get("/runs/{run_id}/charts/{policy}")
def run_charts(run_id: uuid.UUID, policy: str, tenant: Viewer) -> Response:
    """A policy's Gantt chart and utilization heatmap (fetched when its section is opened), and
    a note on what they leave out."""
    try:
        devices, schedule = schedules.get_schedule(tenant, run_id, policy)
    except RunNotFound as exc:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)
    except (ScheduleNotFound, ScheduleNotReproducible) as exc:  # e.g. too large: say why
        return JSONResponse({"figures": {}, "note": f"No schedule: {exc}."})
    categories = _categories(tenant, run_id, schedule.num_tasks)
    figures = {
        "gantt": gantt_figure(devices, schedule, categories),
        "utilization": utilization_figure(devices, schedule),
    }
    note = ""
    if schedule.num_tasks > MAX_GANTT_TASKS:
        note = f"Gantt chart: the first {MAX_GANTT_TASKS:,} of {schedule.num_tasks:,} tasks."
    return JSONResponse({"figures": charts.clean(figures), "note": note})


def not_found(request: Request, tenant: Tenant, what: str) -> Response:
    """Another tenant's work looks exactly like work that does not exist, as in the API."""
    context = {"tenant": tenant, "what": what}
    return render(request, "not_found.html", context, status_code=status.HTTP_404_NOT_FOUND)


def _columns(rank_by: str | None) -> dict[str, charts.Metric]:
    """The leaderboard's metric columns: the rank metric first."""
    columns = dict(charts.RUN_METRICS)
    if rank_by in columns:
        columns = {rank_by: columns.pop(rank_by), **columns}
    return columns


def _num_tasks(run: Run) -> int | None:
    return (run.spec.get("workload") or {}).get("num_tasks")


def _categories(tenant: Tenant, run_id: uuid.UUID, num_tasks: int) -> Categories:
    try:
        return _categories_of(tenant, run_id)
    except (ValidationError, InvalidSpec):  # a spec recorded under an older schema
        return Categories(np.zeros(num_tasks, dtype=np.int32), ("task",))


@lru_cache(maxsize=16)
def _categories_of(tenant: Tenant, run_id: uuid.UUID) -> Categories:
    """Each task's category, rebuilt from the run's spec (deterministic: the workload the run
    simulated; 0.2 s for 100k tasks). Cached: a run's spec never changes."""
    run = runs.get_run(tenant, run_id)
    workload = build_problem(RunSpec.model_validate(run.spec), run_profiles(run.tenant)).workload
    return Categories(workload.category, workload.category_names)
