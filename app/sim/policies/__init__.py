"""The policy registry: adding a policy is one module plus one line here."""

from __future__ import annotations

from app.sim.policies.base import Policy
from app.sim.policies.greedy import Greedy
from app.sim.policies.random import RandomPlacement
from app.sim.policies.round_robin import RoundRobin

REGISTRY: dict[str, type[Policy]] = {
    policy.name: policy
    for policy in (
        RoundRobin,
        RandomPlacement,
        Greedy,
    )
}

POLICY_NAMES: tuple[str, ...] = tuple(REGISTRY)


def make_policy(name: str) -> Policy:
    try:
        return REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}") from None


__all__ = ["POLICY_NAMES", "REGISTRY", "Policy", "make_policy"]
