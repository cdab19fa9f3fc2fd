from __future__ import annotations

import numpy as np

from app.sim.policies.base import Policy


class Greedy(Policy):
    """Minimum execution time (MET): the device that runs this task fastest, whatever is queued
    there; among equally fast devices, the one free first. Cheap, and blind to queueing: under
    load it piles work onto the fastest devices."""

    name = "greedy"
    summary = "the device that runs the task fastest, ignoring its queue (MET)"

    def place(self, task: int, ready: np.ndarray) -> int:
        time = np.where(self.problem.feasible[task], self.problem.exec_time[task], np.inf)
        fastest = np.flatnonzero(time <= time.min() * (1 + 1e-9))
        return int(fastest[np.argmin(self.engine.free_at[fastest])])
