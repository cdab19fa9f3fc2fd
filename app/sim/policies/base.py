"""The one interface every placement policy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from app.sim.decision import Decision
from app.sim.problem import Problem


class Policy(ABC):
    """Says how tasks are placed: `decide` returns the engine's rule and the arrays it needs
    (priorities, believed execution times, preferred devices, split tables, random draws), all
    prepared up front from the problem; the engine then decides task by task (engine.py)."""

    name: ClassVar[str]
    #: One line for listings: what the policy does.
    summary: ClassVar[str]
    #: What it decides on under `knowledge: estimated` (under `clairvoyant`: the truth).
    knows: ClassVar[str] = "nominal estimates (the cost model)"
    #: The paper it comes from (policies/papers.py), or None: this project's own, or a baseline.
    paper: ClassVar[str | None] = None
    #: Whether it is handed the true times even under `estimated` (knowledge.py).
    sees_truth: ClassVar[bool] = False

    @abstractmethod
    def decide(self, problem: Problem, rng: np.random.Generator) -> Decision: ...

    def finished(self, problem: Problem) -> None:  # noqa: B027 (optional hook, empty by default)
        """Called once the simulation is complete; learning policies take stock."""
