from __future__ import annotations

import numpy as np

from app.sim.engine import Engine, Placement
from app.sim.policies.base import Policy
from app.sim.policies.splits import SplitSearch
from app.sim.problem import Problem
from app.sim.ranks import upward_rank

#: GPU shares tried for every split, on top of each pair's analytic optimum f*.
FRACTION_GRID = np.linspace(0.0, 1.0, 21)[1:-1]


class Oracle(Policy):
    """The bound the others are measured against: HEFT's order and insertion, the true costs, and
    an exhaustive search over each task's placements — every device for the whole task, and every
    GPU / CPU-core pair split at every share of a 5 % grid plus the pair's optimal share f*.
    It is the best informed policy, greedy per task; not a proof of optimality."""

    name = "oracle"
    summary = "true costs, exhaustive whole/split search per task, HEFT order: the bound"
    insertion = True

    def prepare(self, problem: Problem, engine: Engine, rng: np.random.Generator) -> None:
        super().prepare(problem, engine, rng)
        self._splits = SplitSearch(problem, engine, problem.exec_time, FRACTION_GRID)

    def priority(self) -> np.ndarray:
        return upward_rank(self.problem)

    def place(self, task: int, ready: np.ndarray) -> Placement:
        finish = self.engine.finish_times(task, ready)
        whole = int(np.argmin(finish))
        split, split_finish = self._splits.best(task, ready)
        return split if split is not None and split_finish < finish[whole] else whole
