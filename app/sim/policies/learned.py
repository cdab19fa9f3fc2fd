from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from app.sim.decision import Decision, Rule
from app.sim.policies.base import Policy
from app.sim.policies.splits import split_tables
from app.sim.problem import Problem
from app.sim.ranks import upward_rank


class PerformanceModel(Protocol):
    """Predicts execution times; app.ml provides the scikit-learn implementation."""

    #: Which model this is (a registry version, or "bootstrap"); runs record it.
    version: str

    def predict_times(
        self, problem: Problem, on_progress: Callable[[float], None] | None = None
    ) -> np.ndarray:
        """Predicted seconds for every task on every device, shape (num_tasks, num_devices);
        `on_progress`, if given, hears the fraction predicted now and then (a large workload's
        predictions take minutes)."""
        ...


class Learned(Policy):
    """Earliest finish time on *predicted* execution times — the idea of StarPU's dmda with a
    learned performance model — in HEFT's order (upward ranks of the predictions) with insertion.
    The model predicts each task's time on each device from the task's and the device's features;
    a split's time and share follow from the two predictions (costs.py). The engine then runs the
    chosen placement with the true costs, so prediction errors cost real time."""

    name = "learned"
    summary = "HEFT-style order and earliest finish time (whole or split) on predicted times"
    knows = "its model's predictions (trained on observed times)"

    def __init__(
        self, model: PerformanceModel, on_progress: Callable[[float], None] | None = None
    ) -> None:
        self.model = model
        self.on_progress = on_progress  # hears the fraction of the predictions made

    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision:
        predictions = self.model.predict_times(problem, self.on_progress)
        predicted = np.asarray(predictions, dtype=np.float64)
        if predicted.shape != problem.exec_time.shape:
            raise ValueError(
                f"the model predicted shape {predicted.shape}, expected {problem.exec_time.shape}"
            )
        predicted = np.ascontiguousarray(np.maximum(predicted, 0.0))
        return Decision(
            Rule.EFT,
            insertion=True,
            priority=upward_rank(problem, predicted),
            estimate=predicted,
            splits=split_tables(problem, predicted),
        )
