"""The contract between a policy and the engine: how a policy says it decides.

A policy returns a `Decision` (policies/base.py): one of a few rules the engine's compiled loop
implements (kernel.py) and the arrays that rule needs. This module knows neither the engine nor
any policy, so both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from app.sim import kernel, kernel_runtime


class Rule(IntEnum):
    FIXED = kernel.FIXED
    ROUND_ROBIN = kernel.ROUND_ROBIN
    UNIFORM = kernel.UNIFORM
    FASTEST = kernel.FASTEST
    EFT = kernel.EFT
    BANDIT = kernel.BANDIT
    EARLIEST_AVAILABLE = kernel.EARLIEST_AVAILABLE
    MIN_MIN = kernel.MIN_MIN
    MAX_MIN = kernel.MAX_MIN
    SUFFERAGE = kernel.SUFFERAGE
    LOOKAHEAD = kernel.LOOKAHEAD
    EAGER = kernel_runtime.EAGER
    WORK_STEALING = kernel_runtime.WORK_STEALING
    DM = kernel_runtime.DM
    DMDA = kernel_runtime.DMDA
    DMDAS = kernel_runtime.DMDAS
    HETEROPRIO = kernel_runtime.HETEROPRIO


#: The rules that map batches of waiting tasks at mapping events (kernel.advance_batches).
BATCH_RULES = frozenset({Rule.MIN_MIN, Rule.MAX_MIN, Rule.SUFFERAGE})

#: The pull-based runtime schedulers: tasks wait in queues until a device takes them, in an
#: event loop of their own (kernel_runtime.advance_runtime); their estimate may hold NaN.
RUNTIME_RULES = frozenset(
    {Rule.EAGER, Rule.WORK_STEALING, Rule.DM, Rule.DMDA, Rule.DMDAS, Rule.HETEROPRIO}
)

#: The most tasks one mapping event maps (batch rules): an event costs up to BATCH_LIMIT**2 *
#: devices completion times, a run at most tasks * BATCH_LIMIT * devices. Measured (December
#: 2026, bench/heuristics.py, 10,000 tasks on 8 cores + 4 GPUs): online at load 0.95 no batch
#: reaches 256 (min-min and sufferage place every task as with a limit of 4,096); all at once,
#: the cost per task grows with the limit: 1.2 µs at 64, 3.4 at 256, 11 at 1,024, 53 at 4,096.
BATCH_LIMIT = 256


@dataclass(frozen=True)
class SplitTables:
    """For each pair of device models (a GPU group and a CPU-core group, as CSR over
    `group_devices`), each task's best GPU share and split time (inf: no split fits)."""

    group_ptr: np.ndarray
    group_devices: np.ndarray
    pair_gpu_group: np.ndarray
    pair_cpu_group: np.ndarray
    share: np.ndarray  # (pairs, tasks)
    time: np.ndarray  # (pairs, tasks), seconds


@dataclass(frozen=True)
class BanditArrays:
    """The rl agent's inputs; the kernel updates `weights` and `covariance` in place."""

    features: np.ndarray  # (tasks, k)
    explore_draws: np.ndarray  # (tasks,) uniforms for the explore-or-exploit test
    action_draws: np.ndarray  # (tasks,) uniforms picking the action when exploring
    weights: np.ndarray  # (3, k): cpu, gpu, split
    covariance: np.ndarray  # (3, k, k)


@dataclass(frozen=True)
class Decision:
    """How a policy decides; only the fields its rule uses need filling."""

    rule: Rule
    insertion: bool = False
    priority: np.ndarray | None = None  # (tasks,): larger first among tasks released together
    # (tasks, devices) seconds it believes; default: its view's. NaN (uncalibrated) only with
    # the RUNTIME_RULES.
    estimate: np.ndarray | None = None
    allowed: np.ndarray | None = None  # (devices,) bool: EFT prefers these, others if none fit
    draws: np.ndarray | None = None  # (tasks,) uniforms for UNIFORM
    fixed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # device, partner, share
    splits: SplitTables | None = None
    bandit: BanditArrays | None = None
    # (tasks, devices) seconds EFT adds to a whole task's finish to choose its device, never to
    # the times it records (PEFT: its optimistic cost table; CPOP: +inf off the critical-path
    # processor); each task needs a finite value on some device it fits. Not with `splits`.
    bias: np.ndarray | None = None
    batch_limit: int = BATCH_LIMIT  # batch rules: the most tasks one mapping event maps
