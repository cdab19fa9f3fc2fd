from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import ARABNEJAD_2014
from app.sim.problem import Problem
from app.sim.ranks import backward, mean_transfer_time


def optimistic_cost_table(problem: Problem) -> np.ndarray:
    """PEFT's OCT, (tasks, devices) seconds, computed backward from the exit tasks:

        OCT(t, p) = max over children c of min over devices w of
                    [OCT(c, w) + w(c, w) + (c̄_tc if w != p else 0)]

    with w(c, w) the child's time on w (inf where it does not fit) and c̄_tc the edge's mean
    transfer time (ranks.mean_transfer_time, as HEFT's rank uses). It is the shortest time the
    rest of the graph still needs after t, if t runs on p and every successor ran on its best
    device ignoring device availability: 0 for exit tasks."""
    workload = problem.workload
    table = np.zeros((problem.num_tasks, problem.num_devices))
    if not workload.has_dependencies:
        return table
    times = np.where(problem.feasible, problem.exec_time, np.inf)
    transfer = mean_transfer_time(problem)
    for task, children, edges in backward(workload):
        onward = table[children] + times[children]  # (children, devices)
        # The min over w splits into w = p (no transfer) and the best w anywhere (+ c̄),
        # which is no better than w = p's own term unless w != p: c̄ >= 0.
        elsewhere = onward.min(axis=1) + transfer[edges]
        table[task] = np.minimum(onward, elsewhere[:, None]).max(axis=0)
    return table


def oct_rank(problem: Problem, table: np.ndarray) -> np.ndarray:
    """rank_oct: each task's mean OCT over the devices it fits."""
    return np.where(problem.feasible, table, 0.0).sum(axis=1) / problem.feasible.sum(axis=1)


class Peft(Policy):
    """Predict Earliest Finish Time (Arabnejad & Barbosa, "List scheduling algorithm for
    heterogeneous systems by an optimistic cost table", IEEE TPDS 25(3), 2014): released tasks in
    decreasing rank_oct (the mean of the task's row of the optimistic cost table), each on the
    device minimising its optimistic EFT, O_EFT(t, p) = EFT(t, p) + OCT(t, p), insertion-based:
    a device that finishes this task a little later can win if the task's successors would
    finish sooner from there. The table is computed up front from the whole graph on the times
    the policy believes. With online arrivals the engine decides each task at release (arrival
    first, rank_oct among tasks released together), so PEFT is its O_EFT rule at arrival; on
    independent tasks every OCT is 0 and it is insertion-based EFT in task order."""

    name = "peft"
    paper = ARABNEJAD_2014
    summary = "PEFT: optimistic-cost-table rank, insertion-based EFT + OCT look-ahead"

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        table = optimistic_cost_table(problem)
        # Independent tasks: the table is all 0, a bias that changes nothing; not handing it over
        # spares the kernel an (n, m) array (80 MB at a million tasks on 10 devices).
        bias = table if problem.workload.has_dependencies else None
        return Decision(Rule.EFT, insertion=True, priority=oct_rank(problem, table), bias=bias)
