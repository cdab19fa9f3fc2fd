from __future__ import annotations

import numpy as np

from app.sim.policies.base import Policy
from app.sim.problem import Problem


class RandomPlacement(Policy):
    """A uniformly random device among those the task fits on (seeded: reproducible)."""

    name = "random"

    def prepare(self, problem: Problem, rng: np.random.Generator) -> None:
        super().prepare(problem, rng)
        self._draws = rng.random(problem.num_tasks)

    def place(self, task: int, ready: float, free_at: np.ndarray) -> int:
        candidates = np.flatnonzero(self.problem.feasible[task])
        return int(candidates[int(self._draws[task] * candidates.shape[0])])
