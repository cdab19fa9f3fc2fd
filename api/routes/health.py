"""Liveness (the process answers) and readiness (its database and broker answer)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import Queue
from api.schemas import ReadinessOut
from app.services.health import check_readiness

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "A dependency is down."}},
)
def ready(queue: Queue, response: Response) -> ReadinessOut:
    readiness = check_readiness(queue)
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ReadinessOut(
        status="ready" if readiness.ready else "unavailable", checks=readiness.checks
    )
