"""What a runtime scheduler believes a task takes: a performance model's prediction per kernel call.

StarPU-style schedulers (policies/runtime.py) decide with a *performance model* chosen per run
rather than with the cost model's estimate: something that answers "how long would kernel k take
on b x b tiles on a device of kind K?" in seconds, NaN where it has no answer yet (uncalibrated:
the scheduler explores, as StarPU's do). app.ml.perfmodels implements the estimators StarPU
offers and the learned one; `ExactModel` here answers with the profile's own measured means (the
oracle estimator of the contest in bench/learning.py).

`predicted_times` turns a model into the (tasks, devices) table a policy's Decision carries. Only
tasks that call a profiled kernel (workload.tile_size set) can be predicted; a workload whose
tasks call none is decided on the times the policy's knowledge gives it (knowledge.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from app.sim import costs
from app.sim.cluster import DeviceKind
from app.sim.measured import DEVICE_NAMES, used
from app.sim.problem import Problem
from app.sim.profile import NotInProfile, Profile

#: The estimators that learn from observed executions (app.ml.perfmodels implements them);
#: named here, beside the interface they answer through, so that a RunSpec can name them.
MODEL_NAMES = ("history", "regression", "nl_regression", "learned")

#: The policies that decide with the run's kernel model (PolicyContext.kernel_model): StarPU's
#: dm, dmda, dmdas and heteroprio (policies/runtime.py). A run that has one of them needs a
#: model; eager and ws decide without one.
MODEL_POLICIES = ("dm", "dmda", "dmdas", "heteroprio")


class KernelModel(Protocol):
    """Predicts kernel calls: seconds per call, NaN where the model is uncalibrated."""

    @property
    def name(self) -> str:
        """Which estimator this is ("history", "regression", "exact", ...)."""

    def predict(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray: ...


@dataclass(frozen=True)
class ExactModel:
    """The profile's measured mean time of each (kernel, tile size, kind of device), interpolated
    as the truth's draws are (profile.py): the best any estimator of mean times can do. NaN where
    the profile has no timing."""

    profile: Profile
    contention: str = "alone"
    name: str = "exact"

    def predict(self, kernel: str, sizes: ArrayLike, device: str) -> np.ndarray:
        size = np.asarray(sizes, dtype=np.float64)
        try:
            return self.profile.times(kernel, device, size, self.contention)
        except NotInProfile:
            return np.full(size.shape, np.nan)


def predicted_times(problem: Problem, model: KernelModel, staging: bool = True) -> np.ndarray:
    """The model's seconds for every task on every device, shape (tasks, devices): its prediction
    of the task's kernel call on the device's kind, plus (with `staging`) the time to move the
    task's input to that device over the cluster's link (costs.transfer_time), which the truth
    charges too (measured.py). NaN where the model is uncalibrated. Raises ValueError if the
    workload's tasks call no kernel (no tile sizes)."""
    workload, cluster = problem.workload, problem.cluster
    if workload.tile_size is None:
        raise ValueError("the workload's tasks call no profiled kernel: nothing to predict")
    n, tiles = problem.num_tasks, workload.tile_size
    times = np.empty((n, problem.num_devices))
    for group in cluster.model_groups(np.arange(problem.num_devices)):
        device = DEVICE_NAMES[DeviceKind(int(cluster.kind[group[0]]))]
        column = np.full(n, np.nan)
        for kernel, tasks in used(workload):
            column[tasks] = np.asarray(model.predict(kernel, tiles[tasks], device), np.float64)
        times[:, group] = column[:, None]
    if staging:
        times = times + costs.transfer_time(workload, cluster)
    return times
