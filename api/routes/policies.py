"""/api/v1/policies: what can be compared."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas import PolicyOut
from app.sim.policies import REGISTRY

router = APIRouter(prefix="/api/v1/policies", tags=["policies"])


@router.get("", response_model=list[PolicyOut])
def list_policies() -> list[PolicyOut]:
    return [PolicyOut(name=name, summary=policy.summary) for name, policy in REGISTRY.items()]
