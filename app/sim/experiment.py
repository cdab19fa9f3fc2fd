"""Run several policies on the same problem: what one simulation run computes."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.sim.engine import simulate
from app.sim.metrics import Metrics, summarize
from app.sim.policies import make_policy
from app.sim.problem import Problem
from app.sim.schedule import Schedule

#: Called with (overall fraction done in [0, 1], name of the policy being simulated).
ExperimentProgress = Callable[[float, str], None]


@dataclass(frozen=True)
class PolicyOutcome:
    policy: str
    metrics: Metrics
    schedule: Schedule


def policy_rng(seed: int, policy: str) -> np.random.Generator:
    """A random stream per (seed, policy): a policy's result does not depend on which other
    policies share the run, nor on their order."""
    return np.random.default_rng(
        np.random.SeedSequence(entropy=seed, spawn_key=(zlib.crc32(policy.encode()),))
    )


def run_experiment(
    problem: Problem,
    policies: Sequence[str],
    seed: int,
    on_progress: ExperimentProgress | None = None,
) -> list[PolicyOutcome]:
    outcomes = []
    for index, name in enumerate(policies):

        def report(fraction: float, index: int = index, name: str = name) -> None:
            if on_progress is not None:
                on_progress((index + fraction) / len(policies), name)

        schedule = simulate(problem, make_policy(name), policy_rng(seed, name), report)
        outcomes.append(PolicyOutcome(name, summarize(problem, schedule), schedule))
    return outcomes
