"""/api/v1/perf-models: the kernel performance models fitted on your runs' observations, which
runtime schedulers decide with (docs/learning.md, "Kernel performance models")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Caller
from api.errors import AUTH, responses
from api.schemas import KernelModelFitOut, KernelModelFitPage
from app.services import perfmodels

router = APIRouter(prefix="/api/v1/perf-models", tags=["models"])


@router.get("", response_model=KernelModelFitPage, responses=responses(*AUTH, 503))
def list_fits(
    tenant: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> KernelModelFitPage:
    """Your fitted versions (an admin key: everyone's), newest first. A run records the
    version it decided with (`perf_model_version`); a spec may pin one."""
    fits, total = perfmodels.list_fits(tenant, limit, offset)
    return KernelModelFitPage(
        items=[KernelModelFitOut.model_validate(fit) for fit in fits],
        total=total,
        limit=limit,
        offset=offset,
    )
