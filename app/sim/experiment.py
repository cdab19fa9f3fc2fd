"""Run several policies on the same problem: what one simulation run computes."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from app.sim.bounds import makespan_lower_bound
from app.sim.engine import simulate
from app.sim.knowledge import Scenario
from app.sim.metrics import Metrics, summarize
from app.sim.policies import PolicyContext, make_policy
from app.sim.policies.rl import Rl
from app.sim.problem import Problem
from app.sim.ranking import default_rank_by, ranked
from app.sim.schedule import Schedule

#: Called with (overall fraction done in [0, 1], name of the policy being simulated).
ExperimentProgress = Callable[[float, str], None]

ORACLE = "oracle"


@dataclass(frozen=True)
class PolicyOutcome:
    policy: str
    metrics: Metrics
    schedule: Schedule
    #: (value - oracle's) / oracle's in the rank metric; None when oracle was not in the run.
    gap_to_oracle: float | None = None
    #: What the policy learned during the run (rl's parameters), to persist.
    learned_state: dict[str, Any] | None = None


def policy_rng(seed: int, policy: str) -> np.random.Generator:
    """A random stream per (seed, policy): a policy's result does not depend on which other
    policies share the run, nor on their order."""
    stream = np.random.SeedSequence(entropy=seed, spawn_key=(zlib.crc32(policy.encode()),))
    return np.random.default_rng(stream)


def run_experiment(
    scenario: Scenario | Problem,
    policies: Sequence[str],
    seed: int,
    on_progress: ExperimentProgress | None = None,
    context: PolicyContext | None = None,
    rank_by: str | None = None,
) -> list[PolicyOutcome]:
    """Every policy on the same scenario (each deciding on its view, all executed on the truth),
    best first by `rank_by` (default: ranking.default_rank_by). A bare `Problem` is a scenario
    whose estimates are exact."""
    if isinstance(scenario, Problem):
        scenario = Scenario.exact(scenario)
    truth = scenario.truth
    rank_by = rank_by or default_rank_by(truth.workload)
    bound = makespan_lower_bound(truth)
    outcomes = []
    for index, name in enumerate(policies):

        def report(fraction: float, index: int = index, name: str = name) -> None:
            if on_progress is not None:
                on_progress((index + fraction) / len(policies), name)

        policy = make_policy(name, context or PolicyContext())
        schedule = simulate(scenario, policy, policy_rng(seed, name), report)
        learned = policy.state() if isinstance(policy, Rl) else None
        metrics = summarize(truth, schedule, bound)
        outcomes.append(PolicyOutcome(name, metrics, schedule, None, learned))
    return ranked(_with_oracle_gaps(outcomes, rank_by), rank_by)


def _with_oracle_gaps(outcomes: list[PolicyOutcome], rank_by: str) -> list[PolicyOutcome]:
    """Each outcome's gap to oracle in the rank metric."""
    oracle = next((o.metrics.value(rank_by) for o in outcomes if o.policy == ORACLE), None)
    if not oracle or not np.isfinite(oracle):
        return outcomes
    return [
        replace(o, gap_to_oracle=(o.metrics.value(rank_by) - oracle) / oracle) for o in outcomes
    ]
