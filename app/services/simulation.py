"""Simulating a RunSpec: the part of a run that needs no database, shared by the worker
(`runs.execute_run`) and `hms simulate`.

The ML stack (scikit-learn, skops, SciPy: seconds to import on a busy machine) loads only for a
spec that uses it, `learned` or an unfitted kernel model, so that `hms simulate` of other
policies does not pay for it (bench/cli.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidSpec
from app.runspec import (
    EXACT_MODEL,
    ProfileLookup,
    RunSpec,
    build_scenario,
    checked_profile,
    kernel_profile,
)
from app.sim.experiment import (
    ExperimentProgress,
    PolicyOutcome,
    policy_schedule,
    run_experiment,
)
from app.sim.policies import PolicyContext
from app.sim.policies.learned import Learned, PerformanceModel
from app.sim.predicted import ExactModel, KernelModel
from app.sim.problem import Problem
from app.sim.ranking import default_rank_by
from app.sim.schedule import Schedule

#: The phase a run is in while its workload and cluster are built (a 400k-task synthetic
#: workload took 10 s on a loaded 2-core machine).
BUILDING = "building the workload"
#: The share of a run's progress its experiment (simulations and metrics) takes; the rest is
#: for storing what it produced (runs.execute_run).
EXPERIMENT_SHARE = 0.9


@dataclass(frozen=True)
class Simulation:
    problem: Problem  # the truth: what the engine executed and the metrics measured
    outcomes: list[PolicyOutcome]  # best first by `rank_by`
    model_version: str | None  # the performance model `learned` used, if it ran
    rank_by: str  # the metric that ordered the outcomes


def simulate_spec(
    spec: RunSpec,
    on_progress: ExperimentProgress | None = None,
    rl_state: dict[str, Any] | None = None,
    performance_model: PerformanceModel | None = None,
    profiles: ProfileLookup = kernel_profile,
    kernel_model: KernelModel | None = None,
) -> Simulation:
    """Every policy of the spec on its scenario; `profiles` resolves the kernel profile it names
    (the shipped ones by default; a worker passes the run's tenant's). The runtime schedulers
    decide with `kernel_model` (a worker passes the fit it chose: services/perfmodels.py) or,
    without one, with `unfitted_kernel_model`."""
    if on_progress is not None:  # building a large workload takes a while: say so first
        on_progress(0.0, BUILDING)
    scenario = build_scenario(spec, profiles)
    model: PerformanceModel | None = None
    if Learned.name in spec.policies:
        from app.ml.bootstrap import bootstrap_model

        model = performance_model or bootstrap_model()
    if kernel_model is None:
        kernel_model = unfitted_kernel_model(spec, profiles)
    context = PolicyContext(performance_model=model, rl_state=rl_state, kernel_model=kernel_model)
    rank_by = spec.rank_by or default_rank_by(scenario.truth.workload)
    progress = None if on_progress is None else _within(on_progress, EXPERIMENT_SHARE)
    outcomes = run_experiment(scenario, spec.policies, spec.seed, progress, context, rank_by)
    _check_finite(outcomes, rank_by)
    version = model.version if model is not None else None
    return Simulation(scenario.truth, outcomes, version, rank_by)


def recompute_schedule(
    spec: RunSpec, policy: str, profiles: ProfileLookup = kernel_profile
) -> tuple[list[str], Schedule]:
    """(device names, `policy`'s schedule) as `simulate_spec` computed them for the spec, for a
    policy that decides on the spec and seed alone: not `learned`, not a warm-started `rl`, not a
    runtime scheduler given a fitted kernel model (a worker stores those: services/schedules.py).
    Builds the scenario and simulates that one policy: no metrics, no other policy."""
    scenario = build_scenario(spec, profiles)
    context = PolicyContext(kernel_model=unfitted_kernel_model(spec, profiles))
    schedule = policy_schedule(scenario, policy, spec.seed, context)
    return scenario.truth.cluster.names(), schedule


def _within(on_progress: ExperimentProgress, share: float) -> ExperimentProgress:
    """`on_progress` with the experiment's fractions scaled to the first `share` of the run."""
    return lambda fraction, phase: on_progress(share * fraction, phase)


def unfitted_kernel_model(spec: RunSpec, profiles: ProfileLookup) -> KernelModel | None:
    """The kernel model a run decides with when no observations are at hand (`hms simulate`,
    a run with no tenant): `exact` is the profile's measured means as the run's truth reads
    them (its contention), the others are unfitted (NaN everywhere: history's schedulers
    explore). None when the spec uses no kernel model (RunSpec.kernel_model_name)."""
    name = spec.kernel_model_name
    if name is None:
        return None
    if name == EXACT_MODEL:
        profile = checked_profile(spec, profiles)
        return None if profile is None else ExactModel(profile)
    from app.ml.perfmodels import make_model

    model: KernelModel = make_model(name)
    return model


def result_documents(simulation: Simulation) -> list[dict[str, Any]]:
    """The leaderboard as the API and `hms simulate --json` show it, best first."""
    return [
        result_document(outcome, rank, simulation.rank_by)
        for rank, outcome in enumerate(simulation.outcomes, start=1)
    ]


def _check_finite(outcomes: list[PolicyOutcome], rank_by: str) -> None:
    """Refuse results that are not finite numbers: JSON has no Infinity or NaN (the API showed
    `"cost": null` where its schema says number). Bounded device characteristics keep a spec's
    metrics finite; a spec that still overflows one (enormous costs or counts) fails naming it."""
    for outcome in outcomes:
        document = result_document(outcome, 0, rank_by)
        del document["rank_value"]  # a copy of one metric: name the metric itself
        utilization = {f"utilization.{k}": v for k, v in document["utilization"].items()}
        values = {**document, **utilization}
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidSpec(
                    f"{outcome.policy}'s {name} is {value}: the spec's numbers overflow a double"
                )


def result_document(outcome: PolicyOutcome, rank: int, rank_by: str) -> dict[str, Any]:
    """One policy's result: its place, the rank metric and its value, every metric."""
    metrics = outcome.metrics
    return {
        "policy": outcome.policy,
        "rank": rank,
        "rank_by": rank_by,
        "rank_value": metrics.value(rank_by),
        "makespan": metrics.makespan,
        "mean_flow_time": metrics.mean_flow_time,
        "p95_flow_time": metrics.p95_flow_time,
        "energy": metrics.energy,
        "cost": metrics.cost,
        "mean_utilization": metrics.mean_utilization,
        "utilization": dict(metrics.utilization),
        "mean_slowdown": metrics.mean_slowdown,
        "slr": metrics.slr,
        "speedup": metrics.speedup,
        "lower_bound": metrics.lower_bound,
        "gap_to_bound": metrics.gap_to_bound,
        "gap_to_oracle": outcome.gap_to_oracle,
    }
