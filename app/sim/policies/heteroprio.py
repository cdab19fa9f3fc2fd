"""HeteroPrio (Agullo, Beaumont, Eyraud-Dubois & Kumar, "Are static schedules so bad? A case study
on Cholesky factorization", IPDPS 2016; its approximation ratio: Beaumont, Eyraud-Dubois & Kumar,
"Approximation proofs of a fast and efficient list scheduling algorithm for task-based runtime
systems on multicores and GPUs", IPDPS 2017), run in the engine's runtime loop, kernel_runtime.py.
"""

from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import AGULLO_2016
from app.sim.policies.runtime import MODEL_KNOWS, believed_priority, believed_times
from app.sim.predicted import KernelModel
from app.sim.problem import Problem


class Heteroprio(Policy):
    """One set of ready tasks, ordered by acceleration factor: a task's believed time on its best
    fitting CPU core over that on its best fitting GPU (1 where either is NaN, uncalibrated: such
    a task is neither kind's favourite). An idle CPU core takes the ready task with the least
    factor, an idle GPU the one with the greatest (ties: higher priority, HEFT's upward rank on
    the believed times, then lower index); a task that fits one kind only goes only there.

    Spoliation: a device idle with nothing it can take looks at the tasks running on devices of
    the other kind; among those it would finish (now + its believed time + moving the inputs)
    before their believed end where they run, it takes the one with the latest believed end:
    that run is aborted (its device idle at once, its partial work lost) and the task restarts on
    the thief. A NaN belief never spoliates nor is spoliated. The schedule records each task's
    final execution only; `Schedule.aborted` counts the aborted runs."""

    name = "heteroprio"
    summary = "HeteroPrio (Agullo et al. 2016): CPUs take the least accelerated work, GPUs the most"
    knows = MODEL_KNOWS
    paper = AGULLO_2016

    def __init__(self, kernel_model: KernelModel | None = None) -> None:
        self.kernel_model = kernel_model

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        times = believed_times(problem, self.kernel_model)
        return Decision(Rule.HETEROPRIO, priority=believed_priority(problem, times), estimate=times)
