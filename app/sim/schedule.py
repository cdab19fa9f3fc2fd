"""The engine's output: where and when every task ran."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

#: A schedule's arrays, in the order its digest reads them.
ARRAYS = ("device", "partner", "gpu_fraction", "start", "end")


@dataclass(frozen=True)
class Schedule:
    """Per task: the device it ran on (the GPU for a split), the CPU core that ran the rest of a
    split (`partner`, -1 otherwise), the share of its work that ran on a GPU, and its start and
    end in seconds. Both devices of a split are busy from start to end. `aborted` counts the runs
    a heteroprio spoliation cut short (kernel_runtime.py): the schedule records each task's final
    execution only, not the partial work lost (0 for every other policy, and where a schedule is
    read back from the store)."""

    device: np.ndarray
    partner: np.ndarray
    gpu_fraction: np.ndarray
    start: np.ndarray
    end: np.ndarray
    aborted: int = 0

    @property
    def num_tasks(self) -> int:
        return int(self.device.shape[0])

    def digest(self) -> str:
        """sha256 (hex) of every array's dtype, shape and bytes, in ARRAYS' order: equal digests
        mean bit-identical schedules (what a schedule recomputed on read is checked against)."""
        sha = hashlib.sha256()
        for name in ARRAYS:
            array = np.ascontiguousarray(getattr(self, name))
            sha.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            sha.update(array.tobytes())
        return sha.hexdigest()

    def tasks_on(self, device: int) -> np.ndarray:
        """The tasks that occupied `device` (whole or as part of a split), by start time."""
        tasks = np.flatnonzero((self.device == device) | (self.partner == device))
        return tasks[np.argsort(self.start[tasks], kind="stable")]

    def busy_intervals(self, device: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of the intervals during which `device` was busy, in time order."""
        tasks = self.tasks_on(device)
        return self.start[tasks], self.end[tasks]

    def busy_time(self, num_devices: int) -> np.ndarray:
        """Seconds each device was busy."""
        duration = self.end - self.start
        busy = np.bincount(self.device, weights=duration, minlength=num_devices)
        split = self.partner >= 0
        busy += np.bincount(self.partner[split], weights=duration[split], minlength=num_devices)
        return busy
