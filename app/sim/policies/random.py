from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.problem import Problem


class RandomPlacement(Policy):
    name = "random"
    summary = "a uniformly random device among those the task fits on (seeded)"
    knows = "no times (only where each task fits)"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.UNIFORM, draws=rng.random(problem.num_tasks))
