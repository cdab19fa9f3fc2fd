"""The batch-mode heuristics for independent tasks (Braun et al., "A comparison of eleven
static heuristics for mapping a class of independent tasks onto heterogeneous distributed
computing systems", JPDC 61(6), 2001, for min-min and max-min; Maheswaran et al., "Dynamic
mapping of a class of independent tasks onto heterogeneous computing systems", JPDC 59(2), 1999,
for sufferage and the batch mode): the waiting tasks are mapped together at each mapping event.

The event rule (kernel.advance_batches): an event happens at the first instant a task is waiting
and a device is idle; its batch is the tasks waiting then, at most `BATCH_LIMIT` (decision.py) in
order of arrival, each mapped whole to the end of a device's queue. Under light load that is
each arrival (and the rules reduce to MCT); while every device is busy, arrivals wait and are
mapped together when one frees up. The limit keeps a run linear in its tasks: a static batch of
10,000 is mapped as windows of 256. Tasks are never remapped once mapped (Maheswaran et al.
remap mapped tasks that have not started; that would make a waiting queue's cost grow with it).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import BRAUN_2001, MAHESWARAN_1999
from app.sim.problem import Problem


class _Batch(Policy):
    rule: ClassVar[Rule]

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(self.rule)


class MinMin(_Batch):
    """Min-min: repeatedly the batch's task with the least minimum completion time goes to the
    device that gives it: short tasks first, each where it completes first."""

    name = "minmin"
    paper = BRAUN_2001
    summary = "min-min (Braun et al. 2001), batch mode: the task completing soonest first"
    rule = Rule.MIN_MIN


class MaxMin(_Batch):
    """Max-min: repeatedly the batch's task with the greatest minimum completion time goes to the
    device that gives it: long tasks first, so short ones fill in around them."""

    name = "maxmin"
    paper = BRAUN_2001
    summary = "max-min (Braun et al. 2001), batch mode: the task completing latest first"
    rule = Rule.MAX_MIN


class Sufferage(_Batch):
    """Sufferage: repeatedly the batch's task that would suffer most from not getting its best
    device — the largest gap between its second-best and best completion times — gets it. The
    greedy form (one task per step, as in Casanova et al., HCW 2000), not Maheswaran et al.'s
    pass in which tasks contend for devices before the queues are updated."""

    name = "sufferage"
    paper = MAHESWARAN_1999
    summary = (
        "sufferage (Maheswaran et al. 1999), batch mode: the task suffering most without its "
        "best device first"
    )
    rule = Rule.SUFFERAGE
