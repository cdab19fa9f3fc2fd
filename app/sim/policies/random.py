from __future__ import annotations

import numpy as np

from app.sim.engine import Engine
from app.sim.policies.base import Policy
from app.sim.problem import Problem


class RandomPlacement(Policy):
    name = "random"
    summary = "a uniformly random device among those the task fits on (seeded)"

    def prepare(self, problem: Problem, engine: Engine, rng: np.random.Generator) -> None:
        super().prepare(problem, engine, rng)
        self._draws = rng.random(problem.num_tasks)

    def place(self, task: int, ready: np.ndarray) -> int:
        candidates = np.flatnonzero(self.problem.feasible[task])
        return int(candidates[int(self._draws[task] * candidates.shape[0])])
