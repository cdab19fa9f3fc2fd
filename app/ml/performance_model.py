"""A scikit-learn regressor as the `learned` policy's performance model.

The estimator predicts ln(seconds per GFLOP) of a task on a device (`features.target`) from
`features.FEATURE_NAMES`; predictions are made once per distinct device model and shared by
identical devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.ml.features import device_features, ln_seconds, pair_features, task_features
from app.sim.problem import Problem


@dataclass
class SklearnPerformanceModel:
    estimator: Any  # a fitted scikit-learn regressor of ln seconds
    version: str

    def predict_times(self, problem: Problem) -> np.ndarray:
        if problem.workload.explicit:
            # The literature's setting: the cost table is the input every scheduler is given.
            return problem.exec_time
        tasks = task_features(problem.workload)
        devices = device_features(problem.cluster)
        predicted = np.empty_like(problem.exec_time)
        for group in problem.cluster.model_groups(np.arange(problem.num_devices)):
            pairs = pair_features(tasks, devices[group[0]])
            seconds = np.exp(ln_seconds(pairs, self.estimator.predict(pairs)))
            predicted[:, group] = seconds[:, None]
        return predicted
