from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import BRAUN_2001
from app.sim.problem import Problem


class EarliestFinishTime(Policy):
    """Earliest finish time on the times it is given (knowledge.py), whole tasks, appended to
    device queues: the online dispatch rule of StarPU's dmda, without its learned performance
    model."""

    name = "eft"
    paper = BRAUN_2001
    summary = "earliest finish time, whole tasks, decided at release"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.EFT)
