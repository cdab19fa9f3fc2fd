from __future__ import annotations

import numpy as np

from app.sim.policies.base import Policy


class EarliestFinishTime(Policy):
    """Earliest finish time with the true costs, whole tasks, appended to device queues: the
    online dispatch rule of StarPU's dmda, without its learned performance model."""

    name = "eft"
    summary = "earliest finish time with the true costs, decided at release"

    def place(self, task: int, ready: np.ndarray) -> int:
        return int(np.argmin(self.engine.finish_times(task, ready)))
