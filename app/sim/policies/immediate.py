"""The immediate-mode heuristics for independent tasks (Braun et al., "A comparison of eleven
static heuristics for mapping a class of independent tasks onto heterogeneous distributed
computing systems", JPDC 61(6), 2001; on-line, Maheswaran et al., "Dynamic mapping of a class of
independent tasks onto heterogeneous computing systems", JPDC 59(2), 1999): each task is mapped
as soon as it is released (arrived, parents placed), in order of arrival, never remapped.
MET and MCT are the engine's FASTEST and EFT rules (also `greedy` and `eft`), named here as the
literature names them."""

from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import BRAUN_2001
from app.sim.problem import Problem


class Olb(Policy):
    """Opportunistic load balancing: the device where the task could start first (the device
    free first, or its data there first), whatever the task costs there; among devices already
    free, the one idle longest. Keeps every device busy, blind to speed."""

    name = "olb"
    paper = BRAUN_2001
    summary = "OLB (Braun et al. 2001): the device available first, ignoring the task's time"
    knows = "no times (only where each task fits and when each device is free)"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.EARLIEST_AVAILABLE)


class Met(Policy):
    """Minimum execution time: the device with the least expected time for the task, ignoring
    its queue (among equally fast devices, the one free first)."""

    name = "met"
    paper = BRAUN_2001
    summary = "MET (Braun et al. 2001): the device with the least expected time, ignoring load"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.FASTEST)


class Mct(Policy):
    """Minimum completion time: the device where the task completes first under its expected
    time, appended to the device's queue (no insertion into idle gaps)."""

    name = "mct"
    paper = BRAUN_2001
    summary = "MCT (Braun et al. 2001): the device where the task completes first, no insertion"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.EFT)
