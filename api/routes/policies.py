"""/api/v1/policies: what can be compared."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Caller
from api.errors import AUTH, responses
from api.schemas import KernelModelOut, PolicyOut
from app.sim.policies import REGISTRY
from app.sim.policies.runtime import KERNEL_MODELS

router = APIRouter(prefix="/api/v1/policies", tags=["policies"])


@router.get("", response_model=list[PolicyOut], responses=responses(*AUTH))
def list_policies(_: Caller) -> list[PolicyOut]:
    """Every policy a run can compare: what it does, and what it decides on. `knows` is what it
    decides on with `knowledge: "estimated"` (the default); with `knowledge: "clairvoyant"`
    every policy decides on the truth (the true execution times of the simulated hardware)."""
    return [
        PolicyOut(name=name, summary=policy.summary, paper=policy.paper, knows=policy.knows)
        for name, policy in REGISTRY.items()
    ]


@router.get("/perf-models", response_model=list[KernelModelOut], responses=responses(*AUTH))
def list_kernel_models(_: Caller) -> list[KernelModelOut]:
    """The kernel performance models a run may name in `perf_model`: what `dm`, `dmda`, `dmdas`
    and `heteroprio` decide with (their fits: GET /api/v1/perf-models)."""
    return [
        KernelModelOut(name=name, summary=summary, paper=paper)
        for name, (summary, paper) in KERNEL_MODELS.items()
    ]
