from __future__ import annotations

import numpy as np

from app.sim.policies.base import Policy


class Greedy(Policy):
    """Earliest finish time: the device on which this task would finish first, given the work
    already queued there and the task's execution time on it."""

    name = "greedy"

    def place(self, task: int, ready: float, free_at: np.ndarray) -> int:
        finish = np.maximum(free_at, ready) + self.problem.exec_time[task]
        finish[~self.problem.feasible[task]] = np.inf
        return int(np.argmin(finish))
