"""Timing one kernel on one tile size: warm-up calls, then repeated calls timed one by one with
`time.perf_counter_ns`, summarized as the profile's timing distribution (seconds).

Where the operands are when a call starts decides what is measured. `WarmOperands` (the first
method) calls the kernel on the same operands every time, the overwritten ones copied fresh just
before: everything is in the core's caches, as it never is for a task of a tiled factorization,
whose tiles were last touched many tasks ago or by another core (inside bench/fidelity.py's DAGs
the kernels at b = 128 ran 1.2-1.7x such a profile's median). `ColdOperands` (the default since
December 2026) rotates over a pool of distinct operand sets larger than the last-level cache, and
copies a set's overwritten operands fresh right after its call (untimed), so every timed call
starts with its operands out of every cache, as StarPU's calibration sees kernels inside real
executions. Copies are never timed in either.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from app.cli.measure.kernels import Kernel, Operands

#: The pool of cold operands is this many times the last-level cache: after a set's call, the
#: other sets' calls and refills touch more than the cache holds before the set comes round again.
POOL_PER_CACHE = 2
#: Assumed when neither sysfs nor sysconf names a last-level cache: 64 MiB, larger than the L3 of
#: one CCX of every EPYC generation up to Zen 4 (32 MiB) and than most desktop L3s.
FALLBACK_CACHE_BYTES = 64 << 20
_SYS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


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


def _size_bytes(text: str) -> int | None:
    """sysfs cache sizes: "32768K", "512K", "8M" (or plain bytes)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip()
    try:
        if text and text[-1].upper() in units:
            return int(text[:-1]) * units[text[-1].upper()]
        return int(text)
    except ValueError:
        return None


def last_level_cache_bytes(sys_cache: Path = _SYS_CACHE) -> int:
    """Bytes of the largest cache level that holds data, as Linux's sysfs describes cpu0's
    caches (index*/level, type, size); else `os.sysconf`'s level-3, then level-2 size; else
    FALLBACK_CACHE_BYTES. sysfs comes first because it is what this (virtual) machine was
    given: on the 2-core EPYC VM sysfs says L3 32768K shared by cpus 0-1, while glibc's
    sysconf reports 256 MiB, the host's L3 summed over its CCXs."""
    best: tuple[int, int] | None = None
    for index in sorted(sys_cache.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            size = _size_bytes((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and size and (best is None or level > best[0]):
            best = (level, size)
    if best:
        return best[1]
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            size = os.sysconf(name)
        except (ValueError, OSError):
            continue
        if size > 0:
            return int(size)
    return FALLBACK_CACHE_BYTES


def cold_pool_bytes() -> int:
    """The default pool of cold operands: POOL_PER_CACHE x the last-level cache."""
    return POOL_PER_CACHE * last_level_cache_bytes()


class OperandSource(Protocol):
    """Where each call's operands come from: `next()` gives the operands of the next call,
    after everything the previous call left to do (copies) was done; nothing in it is timed."""

    def next(self) -> Operands: ...


class WarmOperands:
    """The same operands every call, the overwritten ones copied fresh just before it: the
    kernel runs on tiles in the core's caches (the profile's first method)."""

    def __init__(self, kernel: Kernel, pristine: Operands) -> None:
        self._kernel, self._pristine = kernel, pristine

    def next(self) -> Operands:
        return self._kernel.fresh(self._pristine)


class ColdOperands:
    """Copies of `pristine` filling at least `pool_bytes`, used in turn; after a set's call its
    overwritten operands are copied fresh from `pristine` (when the next set is asked for), so
    between two calls on one set the other sets' calls and copies touch more than `pool_bytes`
    minus one set. With `pool_bytes` above the last-level cache, every call starts cold."""

    def __init__(self, kernel: Kernel, pristine: Operands, pool_bytes: int) -> None:
        set_bytes = sum(op.nbytes for op in pristine)
        count = max(2, math.ceil(pool_bytes / max(set_bytes, 1)))
        self._kernel, self._pristine = kernel, pristine
        # One block per operand, filled in one broadcast copy; set j's operand is the Fortran-
        # ordered view block[j].T (what the wrappers work on in place, as fidelity_exec's tiles).
        blocks = []
        for op in pristine:
            block = np.empty((count, *op.shape[::-1]), dtype=op.dtype)
            block[...] = op.T
            blocks.append(block)
        self.sets = [tuple(block[j].T for block in blocks) for j in range(count)]
        self._last: int | None = None

    def next(self) -> Operands:
        last = self._last
        if last is not None:
            for i in self._kernel.overwritten:
                self.sets[last][i][...] = self._pristine[i]
        self._last = 0 if last is None else (last + 1) % len(self.sets)
        return self.sets[self._last]


def operands_for(kernel: Kernel, pristine: Operands, pool_bytes: int) -> OperandSource:
    """Cold operands from a pool of `pool_bytes`, or warm ones when `pool_bytes` is 0."""
    if pool_bytes > 0:
        return ColdOperands(kernel, pristine, pool_bytes)
    return WarmOperands(kernel, pristine)


def time_call(kernel: Kernel, operands: OperandSource) -> float:
    """Seconds one call of `kernel` takes on the next operands (getting them is not timed)."""
    ops = operands.next()
    start = time.perf_counter_ns()
    kernel.call(ops)
    return (time.perf_counter_ns() - start) * 1e-9


def time_calls(kernel: Kernel, operands: OperandSource, repeats: int, warmup: int) -> np.ndarray:
    """Per-call seconds of exactly `repeats` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        time_call(kernel, operands)
    return np.array([time_call(kernel, operands) for _ in range(repeats)])


def time_cell(kernel: Kernel, operands: OperandSource, budget: Budget) -> np.ndarray:
    """Per-call seconds of as many timed calls as `budget` allows (after its warm-up)."""
    for _ in range(budget.warmup):
        time_call(kernel, operands)
    times: list[float] = []
    deadline = time.perf_counter() + budget.seconds
    while len(times) < budget.max_repeats and (
        len(times) < budget.min_repeats or time.perf_counter() < deadline
    ):
        times.append(time_call(kernel, operands))
    return np.array(times)
