"""The Studies list and a study's page: progress, forest plots per cell, the grid's heatmap."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.web import charts
from api.web.listing import PAGE, Blank, list_context
from api.web.runs import not_found
from api.web.session import Viewer
from api.web.templating import render
from app.db.models import StudyStatus
from app.errors import StudyNotFound
from app.services import studies
from app.studies.spec import StudySpec

router = APIRouter(include_in_schema=False)


@router.get("/studies")
def studies_page(
    request: Request,
    tenant: Viewer,
    status_filter: Annotated[StudyStatus | None, Blank, Query(alias="status")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    views, total = studies.list_studies(tenant, status_filter, PAGE, offset)
    context = {**list_context(tenant, total, offset, status_filter, StudyStatus), "views": views}
    return render(request, "studies.html", context)


@router.get("/studies/{study_id}")
def study_page(request: Request, study_id: uuid.UUID, tenant: Viewer) -> Response:
    try:
        view = studies.get_study(tenant, study_id)
    except StudyNotFound:
        return not_found(request, tenant, f"study {study_id}")
    statistics = view.study.statistics
    keys = sorted(StudySpec.model_validate(view.study.spec).grid)
    cells = []
    if statistics is not None:
        rank_by = statistics["rank_by"]
        cells = [(cell, charts.forest_plot(cell, rank_by)) for cell in statistics["cells"]]
    context = {
        "tenant": tenant,
        "view": view,
        "study": view.study,
        "statistics": statistics,
        "keys": keys,
        "cells": cells,
        "heatmap": charts.grid_heatmap(statistics, keys) if statistics is not None else None,
    }
    return render(request, "study.html", context)
