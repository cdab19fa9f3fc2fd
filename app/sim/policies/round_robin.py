from __future__ import annotations

import numpy as np

from app.sim.engine import Engine
from app.sim.policies.base import Policy
from app.sim.problem import Problem


class RoundRobin(Policy):
    name = "round_robin"
    summary = "devices in turn, skipping those the task does not fit on"

    def prepare(self, problem: Problem, engine: Engine, rng: np.random.Generator) -> None:
        super().prepare(problem, engine, rng)
        self._next = 0

    def place(self, task: int, ready: np.ndarray) -> int:
        feasible = self.problem.feasible[task]
        num_devices = feasible.shape[0]
        device = self._next
        while not feasible[device]:
            device = (device + 1) % num_devices
        self._next = (device + 1) % num_devices
        return device
