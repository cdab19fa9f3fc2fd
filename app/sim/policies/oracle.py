from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.splits import split_tables
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
    knows = "the truth (the true execution times, noise included)"
    sees_truth = True

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(
            Rule.EFT,
            insertion=True,
            priority=upward_rank(problem),
            splits=split_tables(problem, problem.exec_time, FRACTION_GRID),
        )
