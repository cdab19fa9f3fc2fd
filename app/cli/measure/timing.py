"""Timing one kernel on one tile size: warm-up calls, then repeated calls timed one by one with
`time.perf_counter_ns` (fresh copies of the overwritten operands made outside the timed region),
summarized as the profile's timing distribution (seconds)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from app.cli.measure.kernels import Kernel, Operands


@dataclass(frozen=True)
class Budget:
    """How long to measure one (kernel, size) cell: `warmup` untimed calls, then timed calls
    until at least `min_repeats` were made and `seconds` of wall time (calls and copies) have
    passed, or `max_repeats` were made. `min_repeats == max_repeats` fixes the count."""

    warmup: int
    min_repeats: int
    max_repeats: int
    seconds: float


@dataclass(frozen=True)
class TimingStats:
    """The distribution of one cell's per-call times, in seconds."""

    repeats: int
    mean_s: float
    std_s: float
    p05_s: float
    p50_s: float
    p95_s: float

    @classmethod
    def of(cls, times_s: np.ndarray) -> TimingStats:
        """Summarize per-call times (seconds, at least one); std is the sample std (ddof 1),
        0 for a single call; quantiles are linear-interpolated, hence non-decreasing."""
        p05, p50, p95 = np.percentile(times_s, [5, 50, 95])
        std = float(np.std(times_s, ddof=1)) if times_s.size > 1 else 0.0
        return cls(int(times_s.size), float(np.mean(times_s)), std, p05, p50, p95)


def time_call(kernel: Kernel, pristine: Operands) -> float:
    """Seconds one call of `kernel` takes on fresh copies of `pristine` (copying not timed)."""
    operands = kernel.fresh(pristine)
    start = time.perf_counter_ns()
    kernel.call(operands)
    return (time.perf_counter_ns() - start) * 1e-9


def time_calls(kernel: Kernel, pristine: Operands, repeats: int, warmup: int) -> np.ndarray:
    """Per-call seconds of exactly `repeats` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        time_call(kernel, pristine)
    return np.array([time_call(kernel, pristine) for _ in range(repeats)])


def time_cell(kernel: Kernel, pristine: Operands, budget: Budget) -> np.ndarray:
    """Per-call seconds of as many timed calls as `budget` allows (after its warm-up)."""
    for _ in range(budget.warmup):
        time_call(kernel, pristine)
    times: list[float] = []
    deadline = time.perf_counter() + budget.seconds
    while len(times) < budget.max_repeats and (
        len(times) < budget.min_repeats or time.perf_counter() < deadline
    ):
        times.append(time_call(kernel, pristine))
    return np.array(times)
