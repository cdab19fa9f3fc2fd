from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.problem import Problem


class RoundRobin(Policy):
    name = "round_robin"
    summary = "devices in turn, skipping those the task does not fit on"
    knows = "no times (only where each task fits)"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.ROUND_ROBIN)
