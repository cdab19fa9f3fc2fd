"""The Models page: the registry's versions, their holdout errors, and retraining jobs; the
kernel performance models fitted on the caller's runs, beside what the profile measured."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web import charts
from api.web.session import Viewer
from api.web.templating import render
from app.services import perfmodels, training

router = APIRouter(include_in_schema=False)

JOBS = 20


@router.get("/models")
def models_page(request: Request, tenant: Viewer) -> Response:
    versions = training.list_versions()
    jobs, total_jobs = training.list_jobs(tenant, JOBS, 0)
    context = {
        "tenant": tenant,
        "versions": versions,
        "active": next((v for v in versions if v.is_active), None),
        "jobs": jobs,
        "total_jobs": total_jobs,
        "over_time": charts.clean(charts.holdout_over_time(versions)) if versions else None,
        "learning": charts.clean(charts.learning_curve(versions)) if versions else None,
        "kernel_models": perfmodels.models_overview(tenant),
    }
    return render(request, "models.html", context)
