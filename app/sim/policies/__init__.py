"""The policy registry: adding a policy is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.sim.policies.base import Policy
from app.sim.policies.batch import MaxMin, MinMin, Sufferage
from app.sim.policies.cpop import Cpop
from app.sim.policies.device_kind import CpuOnly, GpuOnly
from app.sim.policies.eft import EarliestFinishTime
from app.sim.policies.greedy import Greedy
from app.sim.policies.heft import Heft
from app.sim.policies.heteroprio import Heteroprio
from app.sim.policies.immediate import Mct, Met, Olb
from app.sim.policies.learned import Learned, PerformanceModel
from app.sim.policies.lookahead import Lookahead
from app.sim.policies.oracle import Oracle
from app.sim.policies.peft import Peft
from app.sim.policies.random import RandomPlacement
from app.sim.policies.rl import Rl
from app.sim.policies.round_robin import RoundRobin
from app.sim.policies.runtime import Dm, Dmda, Dmdas, Eager, WorkStealing
from app.sim.predicted import KernelModel

REGISTRY: dict[str, type[Policy]] = {
    policy.name: policy
    for policy in (
        RoundRobin,
        RandomPlacement,
        Greedy,
        CpuOnly,
        GpuOnly,
        EarliestFinishTime,
        Heft,
        Lookahead,
        Peft,
        Cpop,
        Olb,
        Met,
        Mct,
        MinMin,
        MaxMin,
        Sufferage,
        Learned,
        Rl,
        Oracle,
        Eager,
        WorkStealing,
        Dm,
        Dmda,
        Dmdas,
        Heteroprio,
    )
}

#: The policies that decide with the run's kernel performance model (PolicyContext.kernel_model):
#: predicted.MODEL_POLICIES, which a RunSpec reads without importing the policies.
MODEL_BASED: dict[str, type[Dm] | type[Heteroprio]] = {
    policy.name: policy for policy in (Dm, Dmda, Dmdas, Heteroprio)
}

POLICY_NAMES: tuple[str, ...] = tuple(REGISTRY)


@dataclass(frozen=True)
class PolicyContext:
    """What some policies need from outside the core: `learned` a performance model, `rl` the
    parameters it starts from (None: a fresh agent), the runtime schedulers (policies/runtime.py)
    the kernel performance model the run chose (predicted.py; None: they decide on the times
    their knowledge gives them); `on_decision_progress` hears the fraction done of a decision
    that takes long (learned's predictions), per policy (experiment.py sets it)."""

    performance_model: PerformanceModel | None = None
    rl_state: dict[str, Any] | None = None
    kernel_model: KernelModel | None = None
    on_decision_progress: Callable[[float], None] | None = None


def make_policy(name: str, context: PolicyContext | None = None) -> Policy:
    context = context or PolicyContext()
    if name not in REGISTRY:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
    if name == Learned.name:
        if context.performance_model is None:
            raise ValueError("the learned policy needs a performance model")
        return Learned(context.performance_model, context.on_decision_progress)
    if name == Rl.name:
        return Rl(context.rl_state)
    if name in MODEL_BASED:
        return MODEL_BASED[name](context.kernel_model)
    return REGISTRY[name]()


__all__ = ["POLICY_NAMES", "REGISTRY", "Policy", "PolicyContext", "make_policy"]
