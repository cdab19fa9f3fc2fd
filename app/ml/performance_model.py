"""A scikit-learn regressor as the `learned` policy's performance model.

The estimator predicts ln(seconds per GFLOP) of a task on a device (`features.target`) from
`features.FEATURE_NAMES`; predictions are made once per distinct device model and shared by
identical devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.ml.features import device_features, ln_seconds, pair_features, task_features
from app.sim.problem import Problem

#: Tasks predicted at once, so that a run reports its progress between pieces: predicting 50k
#: synthetic tasks' times on two device models took 10 s on one thread of a loaded 2-core
#: machine (800k tasks: minutes of silence before), so a piece of 10k takes about 1 s there.
PREDICT_CHUNK = 10_000


@dataclass
class SklearnPerformanceModel:
    estimator: Any  # a fitted scikit-learn regressor of ln seconds
    version: str

    def predict_times(
        self, problem: Problem, on_progress: Callable[[float], None] | None = None
    ) -> np.ndarray:
        """Predicted seconds, (num_tasks, num_devices); `on_progress` hears the fraction done
        after each PREDICT_CHUNK tasks of a device model (the same numbers as in one piece: a
        tree ensemble predicts each row on its own)."""
        if problem.workload.explicit:
            # The literature's setting: the cost table is the input every scheduler is given.
            return problem.exec_time
        tasks = task_features(problem.workload)
        devices = device_features(problem.cluster)
        predicted = np.empty_like(problem.exec_time)
        groups = problem.cluster.model_groups(np.arange(problem.num_devices))
        chunks = [(g, start) for g in groups for start in range(0, len(tasks), PREDICT_CHUNK)]
        for done, (group, start) in enumerate(chunks, start=1):
            rows = slice(start, start + PREDICT_CHUNK)
            pairs = pair_features(tasks[rows], devices[group[0]])
            seconds = np.exp(ln_seconds(pairs, self.estimator.predict(pairs)))
            predicted[rows, group] = seconds[:, None]
            if on_progress is not None:
                on_progress(done / len(chunks))
        return predicted
