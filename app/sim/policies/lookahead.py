from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import BITTENCOURT_2010
from app.sim.problem import Problem
from app.sim.ranks import upward_rank


class Lookahead(Policy):
    """Lookahead HEFT (Bittencourt, Sakellariou & Madeira, "DAG scheduling using a lookahead
    variant of the Heterogeneous Earliest Finish Time algorithm", PDP 2010), its basic variant:
    tasks in HEFT's order (decreasing upward rank), and for each device p the task t fits, t is
    placed tentatively at its insertion-based earliest finish on p, then t's children, in
    decreasing upward rank, each at its earliest finish over the devices it fits; p's score is the
    largest finish among the children (t's own when it has none), and t goes to the device of
    least score (ties: t's own earlier finish, then the lower index). Only t's placement is kept.

    Where it departs from the paper, to keep a decision at O(children x devices) per candidate
    device: the children are placed at the end of the devices' tentative queues (no insertion
    into idle gaps, which HEFT's own placement of them would try), and a child's inputs from
    parents not yet placed are ignored (its data-ready time counts t on p and the placed parents).
    The paper's other variants — looking further down the graph, or over every task of the
    priority queue instead of the children — are not implemented. Its full text was not at hand
    here: this follows its abstract (decisions that "look ahead in the schedule and take into
    account ... the children of the task being allocated") and the variant described above.

    Like HEFT, the ranks come up front from the whole graph on the times the policy believes, and
    with online arrivals the engine decides each task at release (arrival first, rank among tasks
    released together). On independent tasks no task has children: it is HEFT (insertion-based
    earliest finish in task order)."""

    name = "lookahead"
    summary = "lookahead HEFT: upward-rank order, the device where the task's children finish first"
    paper = BITTENCOURT_2010

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(Rule.LOOKAHEAD, insertion=True, priority=upward_rank(problem))
