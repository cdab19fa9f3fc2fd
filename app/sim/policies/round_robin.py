from __future__ import annotations

import numpy as np

from app.sim.policies.base import Policy
from app.sim.problem import Problem


class RoundRobin(Policy):
    """Devices in turn, skipping those the task does not fit on."""

    name = "round_robin"

    def prepare(self, problem: Problem, rng: np.random.Generator) -> None:
        super().prepare(problem, rng)
        self._next = 0

    def place(self, task: int, ready: float, free_at: np.ndarray) -> int:
        feasible = self.problem.feasible[task]
        num_devices = feasible.shape[0]
        device = self._next
        while not feasible[device]:
            device = (device + 1) % num_devices
        self._next = (device + 1) % num_devices
        return device
