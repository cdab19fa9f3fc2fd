"""The one interface every placement policy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from app.sim.problem import Problem


class Policy(ABC):
    """Chooses a device for each task as it becomes ready.

    The engine calls `prepare` once per simulation, then `place` once per task in the order tasks
    become ready. `free_at[d]` is when device d finishes the work already placed on it (seconds).
    `place` must return a device on which the task fits (`problem.feasible[task]`).
    """

    name: ClassVar[str]

    def prepare(self, problem: Problem, rng: np.random.Generator) -> None:
        self.problem = problem

    @abstractmethod
    def place(self, task: int, ready: float, free_at: np.ndarray) -> int: ...
