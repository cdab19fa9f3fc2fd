from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import BRAUN_2001
from app.sim.problem import Problem


class Greedy(Policy):
    """Minimum execution time (MET): the device that runs this task fastest, whatever is queued
    there; among equally fast devices, the one free first. Cheap, and blind to queueing: under
    load it piles work onto the fastest devices."""

    name = "greedy"
    paper = BRAUN_2001
    summary = "the device that runs the task fastest, ignoring its queue (MET)"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.FASTEST)
