"""Simulating a RunSpec: the part of a run that needs no database, shared by the worker
(`runs.execute_run`) and `hms simulate`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.ml.bootstrap import bootstrap_model
from app.runspec import RunSpec, build_problem
from app.sim.experiment import ExperimentProgress, PolicyOutcome, run_experiment
from app.sim.policies import PolicyContext
from app.sim.policies.learned import Learned, PerformanceModel
from app.sim.problem import Problem


@dataclass(frozen=True)
class Simulation:
    problem: Problem
    outcomes: list[PolicyOutcome]  # best makespan first, then best mean flow time
    model_version: str | None  # the performance model `learned` used, if it ran


def simulate_spec(
    spec: RunSpec,
    on_progress: ExperimentProgress | None = None,
    rl_state: dict[str, Any] | None = None,
    performance_model: PerformanceModel | None = None,
) -> Simulation:
    problem = build_problem(spec)
    uses_model = Learned.name in spec.policies
    model = (performance_model or bootstrap_model()) if uses_model else None
    context = PolicyContext(performance_model=model, rl_state=rl_state)
    outcomes = run_experiment(problem, spec.policies, spec.seed, on_progress, context)
    outcomes.sort(key=lambda o: (o.metrics.makespan, o.metrics.mean_flow_time))
    return Simulation(problem, outcomes, model.version if model is not None else None)


def result_document(outcome: PolicyOutcome) -> dict[str, Any]:
    """One policy's result as the API and `hms simulate --json` show it."""
    metrics = outcome.metrics
    return {
        "policy": outcome.policy,
        "makespan": metrics.makespan,
        "mean_flow_time": metrics.mean_flow_time,
        "p95_flow_time": metrics.p95_flow_time,
        "energy": metrics.energy,
        "cost": metrics.cost,
        "mean_utilization": metrics.mean_utilization,
        "utilization": dict(metrics.utilization),
        "slr": metrics.slr,
        "speedup": metrics.speedup,
        "gap_to_oracle": outcome.gap_to_oracle,
    }
