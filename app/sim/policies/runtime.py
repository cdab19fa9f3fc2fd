"""StarPU's scheduling policies (Augonnet, Thibault, Namyst & Wacrenier, "StarPU: a unified
platform for task scheduling on heterogeneous multicore architectures", CCPE 23(2), 2011; the
StarPU handbook, chapter "Task Scheduling Policies"): pull-based runtimes, where a task waits in a
queue until a device takes it. The engine runs them in its event loop kernel_runtime.py, whose
docstring states the event rules (what an instant does, when data moves, which idle device goes
first); here, what each policy decides.

dm, dmda and dmdas decide with a *performance model* chosen per run (PolicyContext.kernel_model,
predicted.py): with one, and a workload whose tasks call profiled kernels (tile sizes), they
believe its predictions (plus the staging of each task's input), NaN where it is uncalibrated;
otherwise the times their knowledge gives them (knowledge.py), like every other policy.
"""

from __future__ import annotations

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.papers import AUGONNET_2009, AUGONNET_2011
from app.sim.predicted import KernelModel, predicted_times
from app.sim.problem import Problem
from app.sim.ranks import upward_rank

MODEL_KNOWS = (
    "its kernel performance model's predictions, NaN (explore) where uncalibrated; "
    "without a model, nominal estimates (the cost model)"
)


#: The kernel performance models a run may choose (`perf_model`, predicted.py): name -> (what it
#: predicts, its paper or None). app.ml.perfmodels implements the first four; `exact` is
#: predicted.ExactModel. GET /api/v1/policies/perf-models and `hms policies` list them.
KERNEL_MODELS: dict[str, tuple[str, str | None]] = {
    "history": (
        "StarPU's default: the mean observed time per (kernel, tile size, kind of device), "
        "uncalibrated (the scheduler explores) below 10 observations of that entry",
        AUGONNET_2009,
    ),
    "regression": (
        "t = a * b^p per (kernel, kind of device), least squares in log space; any size once "
        "two sizes were observed",
        AUGONNET_2009,
    ),
    "nl_regression": (
        "t = a * b^p + c per (kernel, kind of device), non-linear least squares; any size once "
        "three sizes were observed",
        AUGONNET_2011,
    ),
    "learned": (
        "this project's gradient-boosted trees on a kernel call's features (the retrain's "
        "model), fitted on the observations; answers everywhere",
        None,
    ),
    "exact": (
        "the kernel profile's own measured mean times: the oracle estimator, the best any "
        "model of mean times can do",
        None,
    ),
}


def believed_times(problem: Problem, model: KernelModel | None) -> np.ndarray:
    """(tasks, devices) seconds: the model's predictions where it can make them (NaN where it is
    uncalibrated), else the problem's own times (the policy's view)."""
    if model is None or problem.workload.tile_size is None:
        return problem.exec_time
    return np.ascontiguousarray(predicted_times(problem, model))


def believed_priority(problem: Problem, times: np.ndarray) -> np.ndarray:
    """HEFT's upward rank (ranks.py) on the believed times, each NaN replaced by the task's mean
    finite believed time over the devices it fits (0 if it has none)."""
    if not np.isnan(times).any():  # the usual case, a pass over the table instead of five
        return upward_rank(problem, times)
    finite = np.isfinite(times) & problem.feasible
    counted = finite.sum(axis=1)
    total = np.where(finite, times, 0.0).sum(axis=1)
    mean = np.divide(total, counted, out=np.zeros(problem.num_tasks), where=counted > 0)
    filled = np.where(np.isnan(times), mean[:, None], times)
    return upward_rank(problem, filled)


class Pull(Policy):
    """A runtime that decides with no times: its rule says where tasks wait and who takes them."""

    rule: Rule
    knows = "no times (only where each task fits)"
    paper = AUGONNET_2011

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        return Decision(self.rule)


class Eager(Pull):
    """StarPU's `eager`: one central FIFO queue; a device that goes idle takes the oldest ready
    task it fits (among tasks released at one instant: the one that arrived first, then the
    lower index); when several devices are idle, the lowest index first. Blind to times."""

    name = "eager"
    summary = "StarPU eager (Augonnet et al. 2011): one central queue, idle devices pull"
    rule = Rule.EAGER


class WorkStealing(Pull):
    """StarPU's `ws`: a FIFO queue per device. A released task goes to the queue of the device
    whose completion released it (its last parent's), if it fits there; else, and for a task
    with no parent, to the next fitting device in round-robin. An idle device runs its own
    queue's oldest task, else steals the oldest task it fits from the queue with the most
    waiting tasks (lowest index on ties; the next fullest while a fuller one holds none it fits).
    StarPU's ws picks its victim differently: round-robin, the next non-empty queue after the
    last victim (src/sched_policies/work_stealing_policy.c; a compile-time variant weighs the
    workers' history, and `lws` the nearest worker in the machine's topology). The fullest queue
    is a deterministic choice that does not depend on which device stole last."""

    name = "ws"
    summary = "StarPU ws (Augonnet et al. 2011): per-device queues, idle devices steal"
    rule = Rule.WORK_STEALING


class Dm(Policy):
    """StarPU's `dm` (deque model): each released task is pushed to the fitting device with the
    least expected end exp_end[d] + predicted(task, d), where exp_end[d] = max(now, the believed
    end of d's running task) + the believed lengths of the tasks queued on d (NaN counted 0);
    lowest index on ties. Where the model is uncalibrated for the task (NaN on some fitting
    device) it explores as StarPU does: among those devices, the one with the fewest tasks
    queued. Queues are FIFO."""

    name = "dm"
    summary = "StarPU dm (Augonnet et al. 2011): the device of least expected end, model-based"
    knows = MODEL_KNOWS
    paper = AUGONNET_2011
    rule = Rule.DM
    #: Whether tasks carry a priority (dmdas); without, those released together go by index.
    prioritised = False

    def __init__(self, kernel_model: KernelModel | None = None) -> None:
        self.kernel_model = kernel_model

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        times = believed_times(problem, self.kernel_model)
        priority = believed_priority(problem, times) if self.prioritised else None
        return Decision(self.rule, priority=priority, estimate=times)


class Dmda(Dm):
    """StarPU's `dmda` (deque model, data aware): dm's choice plus the time the task's inputs
    take to reach the device (the data penalty), i.e. the least exp_end[d] + predicted(task, d)
    + transfer(task, d). StarPU's dmda minimises alpha * (expected end - best expected end) +
    beta * transfer + gamma * energy (deque_modeling_policy_data_aware.c); with its defaults
    alpha = beta = 1 and no energy model, the same choice. Queues are FIFO."""

    name = "dmda"
    summary = "StarPU dmda (Augonnet et al. 2011): dm plus the cost of moving the task's data"
    rule = Rule.DMDA


class Dmdas(Dm):
    """StarPU's `dmdas`: dmda's choice, each device's queue sorted by priority, highest first
    (first come, first served among equals); the priority is HEFT's upward rank on the believed
    times (NaN replaced by the task's mean believed time)."""

    name = "dmdas"
    summary = "StarPU dmdas (Augonnet et al. 2011): dmda with priority-sorted queues"
    rule = Rule.DMDAS
    prioritised = True
