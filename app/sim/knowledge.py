"""Truth and belief: what really happens, and what each policy may know of it.

A `Scenario` holds two problems over the same tasks and devices: `truth`, the times the simulated
hardware really takes, which the engine executes and the metrics measure, and
`estimate`, the nominal cost model's times (costs.py), which is all a user could compute in
advance. A policy is handed exactly one of them, `view(policy)`, and never the scenario itself,
so no policy can read the truth by accident:

- `estimated` (the default): policies decide on the nominal estimates, except those whose class
  says `sees_truth` (oracle: the bound the others are measured against). `learned` ignores the
  times it is handed and predicts its own; `rl` learns from the durations it observes.
- `clairvoyant`: every policy decides on the truth (the literature's setting, where the cost
  tables are the input).

The truth:
- tasks that call kernels (tiled DAGs, workloads drawn from a profile: their `tile_size` is set)
  take times drawn from the cluster's kernel profile (`Scenario.measured`, measured.py): what that
  machine measured, nothing invented. Their estimate is the datasheet view: the nominal cost
  model, which for kernel calls (data parallel, intensity 1) is flops / the device's peak + the
  task's input bytes / the link's nominal bandwidth (+ its latency) on a GPU;
- tasks that call no kernel (explicit cost tables, imported workflows and graphs, which state
  sizes, not kernels) run exactly as the cost model says: no measurement describes how they
  depart from it, and none is invented. Their truth is their estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from app.sim import measured
from app.sim.cluster import Cluster
from app.sim.load import at_load
from app.sim.problem import Problem
from app.sim.profile import Profile
from app.sim.workload import Workload

if TYPE_CHECKING:
    from app.sim.policies.base import Policy


class Knowledge(StrEnum):
    ESTIMATED = "estimated"
    CLAIRVOYANT = "clairvoyant"


@dataclass(frozen=True)
class Scenario:
    truth: Problem
    estimate: Problem
    knowledge: Knowledge = Knowledge.ESTIMATED

    @classmethod
    def build(
        cls,
        workload: Workload,
        cluster: Cluster,
        profile: Profile | None,
        seed: int,
        knowledge: Knowledge = Knowledge.ESTIMATED,
        load: float | None = None,
    ) -> Scenario:
        """The estimate from the cost model; the truth drawn from `profile` when the workload's
        tasks call kernels (`measured`), else the estimate itself (module docstring). With
        `load`, the workload's arrivals (drawn at rate 1) are scaled to that offered load on the
        truth's mean times (load.py). The same arguments give bit-identical times."""
        if profile is not None and workload.tile_size is not None:
            return cls.measured(workload, cluster, profile, seed, knowledge, load)
        # Problem.build raises Infeasible for a task that fits nowhere (before any load is set).
        estimate = Problem.build(workload, cluster)
        if load is not None:
            workload = at_load(workload, cluster, load, estimate.exec_time)
            estimate = Problem(workload, cluster, estimate.exec_time, estimate.feasible)
        return cls(estimate, estimate, knowledge)

    @classmethod
    def measured(
        cls,
        workload: Workload,
        cluster: Cluster,
        profile: Profile,
        seed: int,
        knowledge: Knowledge = Knowledge.ESTIMATED,
        load: float | None = None,
    ) -> Scenario:
        """The estimate from the nominal cost model (the datasheet view), the truth drawn from
        `profile` on the stream `KERNEL_TIME_STREAM` of `seed` (measured.py), on the cluster with
        the profile's measured link if it has one: the same arguments give bit-identical times.
        Raises `NotInProfile` for a kernel, kind of device or tile size the profile lacks."""
        estimate = Problem.build(workload, cluster)
        machine = measured.measured_cluster(cluster, profile)
        measured.check_covered(workload, machine, profile)
        if load is not None:
            mean = measured.true_execution_time(workload, machine, profile, None)
            workload = at_load(workload, cluster, load, mean)
            estimate = Problem(workload, cluster, estimate.exec_time, estimate.feasible)
        stream = np.random.SeedSequence(entropy=seed, spawn_key=(measured.KERNEL_TIME_STREAM,))
        rng = np.random.default_rng(stream)
        times = measured.true_execution_time(workload, machine, profile, rng)
        truth = Problem(workload, machine, times, estimate.feasible)
        return cls(truth, estimate, knowledge)

    @classmethod
    def exact(cls, problem: Problem, knowledge: Knowledge = Knowledge.ESTIMATED) -> Scenario:
        """A scenario whose estimates are the truth (explicit cost tables, tests)."""
        return cls(problem, problem, knowledge)

    def view(self, policy: Policy) -> Problem:
        """The problem `policy` decides on."""
        if self.knowledge is Knowledge.CLAIRVOYANT or policy.sees_truth:
            return self.truth
        return self.estimate
