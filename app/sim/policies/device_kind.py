"""Policies restricted to one kind of device: the baselines a heterogeneous scheduler must beat."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from app.sim.cluster import DeviceKind
from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.problem import Problem


class _OneKind(Policy):
    """Earliest finish time over the devices of one kind; a task that fits none of them (or a
    cluster without that kind) falls back to the other kind, since a task must run somewhere."""

    kind: ClassVar[DeviceKind]

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.EFT, allowed=problem.cluster.kind == self.kind)


class CpuOnly(_OneKind):
    name = "cpu_only"
    summary = "earliest finish time on CPU cores only"
    kind = DeviceKind.CPU


class GpuOnly(_OneKind):
    name = "gpu_only"
    summary = "earliest finish time on GPUs only (CPU cores for tasks no GPU can hold)"
    kind = DeviceKind.GPU
