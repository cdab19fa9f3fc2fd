from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import TOPCUOGLU_2002
from app.sim.problem import Problem
from app.sim.ranks import upward_rank


class Heft(Policy):
    """Heterogeneous Earliest Finish Time (Topcuoglu, Hariri & Wu, 2002): tasks in decreasing
    upward rank, each on the device where it finishes first, allowed to fill idle gaps
    (insertion-based). With online arrivals the engine decides at arrival, so HEFT reduces to its
    earliest-finish-time rule at arrival."""

    name = "heft"
    paper = TOPCUOGLU_2002
    summary = "HEFT: upward-rank order, insertion-based earliest finish time"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.EFT, insertion=True, priority=upward_rank(problem))
