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

#: Called with (overall fraction done in [0, 1], the phase: "simulating heft (3/9)",
#: "computing metrics (3/9)").
ExperimentProgress = Callable[[float, str], None]

#: The share of an experiment's progress its simulations take; computing the metrics takes the
#: rest. Measured on 400k synthetic tasks (a loaded 2-core machine): a policy's simulation took
#: 0.25 to 5 s, its metrics 0.5 to 1.4 s, the lower bound 1.6 s once.
SIMULATION_SHARE = 0.75
#: The share of a policy's simulation its decision takes when it reports its progress: learned's
#: predictions of 800k tasks took 122 s, its simulation a few seconds (a loaded 2-core machine).
DECISION_SHARE = 0.8

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
    report = _Phases(on_progress, len(policies))
    rank_by = rank_by or default_rank_by(scenario.truth.workload)
    simulated = [
        _simulate(scenario, name, seed, context or PolicyContext(), report.simulating(index, name))
        for index, name in enumerate(policies)
    ]
    report("computing metrics", SIMULATION_SHARE)
    bound = makespan_lower_bound(scenario.truth)
    outcomes = []
    for index, (name, schedule, learned) in enumerate(simulated):
        report.measuring(index)
        metrics = summarize(scenario.truth, schedule, bound)
        outcomes.append(PolicyOutcome(name, metrics, schedule, None, learned))
    return ranked(_with_oracle_gaps(outcomes, rank_by), rank_by)


def policy_schedule(
    scenario: Scenario, name: str, seed: int, context: PolicyContext | None = None
) -> Schedule:
    """One policy's schedule alone, exactly as `run_experiment` computes it with the same
    scenario, seed and context (each policy has its own random stream: policy_rng)."""
    return _simulate(scenario, name, seed, context or PolicyContext(), None)[1]


def _simulate(
    scenario: Scenario,
    name: str,
    seed: int,
    context: PolicyContext,
    report: Callable[[float], None] | None,
) -> tuple[str, Schedule, dict[str, Any] | None]:
    """One policy's schedule on the scenario, and what it learned (rl's parameters)."""
    progress = None if report is None else _PolicyProgress(report)
    if progress is not None:
        progress.simulating(0.0)  # before its decision, which can take a while (HEFT's ranks)
        context = replace(context, on_decision_progress=progress.deciding)
    policy = make_policy(name, context)
    on_progress = None if progress is None else progress.simulating
    schedule = simulate(scenario, policy, policy_rng(seed, name), on_progress)
    return name, schedule, policy.state() if isinstance(policy, Rl) else None


class _PolicyProgress:
    """One policy's progress in [0, 1]: a decision that reports its progress (learned's
    predictions) takes the first DECISION_SHARE of it, the engine's simulation the rest; the
    others' decisions are quick and the simulation takes it all."""

    def __init__(self, report: Callable[[float], None]) -> None:
        self.report = report
        self.decided_at = 0.0  # where the simulation's share begins

    def deciding(self, fraction: float) -> None:
        self.decided_at = DECISION_SHARE
        self.report(DECISION_SHARE * fraction)

    def simulating(self, fraction: float) -> None:
        self.report(self.decided_at + (1.0 - self.decided_at) * fraction)


class _Phases:
    """Turns the experiment's steps into (overall fraction, phase) reports: each policy's
    simulation an equal part of SIMULATION_SHARE, each policy's metrics an equal part of the
    rest."""

    def __init__(self, on_progress: ExperimentProgress | None, count: int) -> None:
        self.on_progress = on_progress
        self.count = count

    def __call__(self, phase: str, fraction: float) -> None:
        if self.on_progress is not None:
            self.on_progress(fraction, phase)

    def simulating(self, index: int, name: str) -> Callable[[float], None] | None:
        """The engine's progress callback for the `index`th policy, `name` (None without
        `on_progress`: the engine then simulates in one step)."""
        if self.on_progress is None:
            return None
        phase = f"simulating {name} ({index + 1}/{self.count})"
        share = SIMULATION_SHARE / self.count

        def report(fraction: float) -> None:
            self(phase, share * (index + fraction))

        return report

    def measuring(self, index: int) -> None:
        """The metrics of the `index`th policy begin."""
        share = (1.0 - SIMULATION_SHARE) / self.count
        self(f"computing metrics ({index + 1}/{self.count})", SIMULATION_SHARE + share * index)


def _with_oracle_gaps(outcomes: list[PolicyOutcome], rank_by: str) -> list[PolicyOutcome]:
    """Each outcome's gap to oracle in the rank metric."""
    oracle = next((o.metrics.value(rank_by) for o in outcomes if o.policy == ORACLE), None)
    if not oracle or not np.isfinite(oracle):
        return outcomes
    return [
        replace(o, gap_to_oracle=(o.metrics.value(rank_by) - oracle) / oracle) for o in outcomes
    ]
