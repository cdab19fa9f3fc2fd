"""The RunSpec: what a user asks to simulate. Validated once here (pydantic), then turned into the
core's plain objects (`Workload`, `Cluster`) by `build_problem`.

The API's request body and `hms simulate --spec FILE` take exactly this JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.errors import InvalidSpec
from app.sim.cluster import Cluster
from app.sim.policies import POLICY_NAMES
from app.sim.problem import Infeasible, Problem
from app.sim.workload import SyntheticParams, synthetic_workload

MAX_TASKS = 1_000_000
MAX_SEED = 2**63 - 1

PolicyName = Literal[POLICY_NAMES]  # type: ignore[valid-type]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticWorkloadSpec(_Spec):
    kind: Literal["synthetic"] = "synthetic"
    num_tasks: int = Field(ge=1, le=MAX_TASKS, description="Number of tasks to generate.")
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Generator seed; defaults to the run's seed."
    )
    arrival_rate: float = Field(default=100.0, gt=0, le=1e6, description="Tasks per second.")
    min_size: float = Field(default=1.0, gt=0, le=1e6, description="Smallest task, GFLOP.")
    size_tail: float = Field(default=1.8, gt=1.0, le=10.0, description="Pareto shape of sizes.")
    gpu_friendly_share: float = Field(default=0.5, ge=0, le=1)


WorkloadSpec = Annotated[SyntheticWorkloadSpec, Field(discriminator="kind")]


class ClusterSpec(_Spec):
    cpus: int = Field(default=8, ge=0, le=1024, description="Number of CPU cores.")
    gpus: int = Field(default=2, ge=0, le=256, description="Number of GPUs.")

    @model_validator(mode="after")
    def _has_a_device(self) -> ClusterSpec:
        if self.cpus + self.gpus == 0:
            raise ValueError("a cluster needs at least one CPU core or GPU")
        return self


class RunSpec(_Spec):
    workload: WorkloadSpec
    cluster: ClusterSpec = ClusterSpec()
    policies: list[PolicyName] = Field(min_length=1, max_length=len(POLICY_NAMES))
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Seed of every random choice.")
    priority: int = Field(default=5, ge=0, le=9, description="9 is the most urgent.")

    @field_validator("policies")
    @classmethod
    def _unique(cls, policies: list[str]) -> list[str]:
        if len(set(policies)) != len(policies):
            raise ValueError("each policy may appear only once")
        return policies

    @property
    def workload_seed(self) -> int:
        return self.seed if self.workload.seed is None else self.workload.seed


def build_problem(spec: RunSpec) -> Problem:
    """The workload and cluster a spec describes, deterministically from its seeds."""
    workload_spec = spec.workload
    params = SyntheticParams(
        num_tasks=workload_spec.num_tasks,
        arrival_rate=workload_spec.arrival_rate,
        min_size=workload_spec.min_size,
        size_tail=workload_spec.size_tail,
        gpu_friendly_share=workload_spec.gpu_friendly_share,
    )
    workload = synthetic_workload(params, np.random.default_rng(spec.workload_seed))
    cluster = Cluster.homogeneous_kinds(spec.cluster.cpus, spec.cluster.gpus)
    try:
        return Problem.build(workload, cluster)
    except (Infeasible, ValueError) as exc:
        raise InvalidSpec(str(exc)) from exc
