"""The one interface every placement policy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from app.sim.engine import Engine, Placement
from app.sim.problem import Problem


class Policy(ABC):
    """Chooses where each released task runs.

    The engine calls `prepare` once per simulation, then, for each task in decision order,
    `place` and, once the placement is committed (`engine.start/end[task]` known), `placed`.
    `ready[d]` is when the task's input data could be on device d (seconds). `place` returns a
    device index (the whole task) or an `engine.Split`; the device must fit the task's data.
    """

    name: ClassVar[str]
    #: One line for listings: what the policy does.
    summary: ClassVar[str]
    #: Ask the engine to search idle gaps left on a device (insertion-based scheduling).
    insertion: ClassVar[bool] = False

    def prepare(self, problem: Problem, engine: Engine, rng: np.random.Generator) -> None:
        self.problem = problem
        self.engine = engine
        self.rng = rng

    def priority(self) -> np.ndarray | None:
        """Decision order among tasks released together (larger first); None keeps index order."""
        return None

    @abstractmethod
    def place(self, task: int, ready: np.ndarray) -> Placement: ...

    def placed(self, task: int) -> None:  # noqa: B027 (optional hook, empty by default)
        """Called after each placement is committed; learning policies observe the outcome."""
