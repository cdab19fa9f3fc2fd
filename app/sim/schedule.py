"""The engine's output: where and when every task ran."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Schedule:
    """Per task: the device index it ran on, start and end times in seconds, and the share of its
    work that ran on a GPU (1.0 for a whole task on a GPU, 0.0 on a CPU core)."""

    device: np.ndarray
    start: np.ndarray
    end: np.ndarray
    gpu_fraction: np.ndarray

    @property
    def num_tasks(self) -> int:
        return int(self.device.shape[0])
