"""The contract between a policy and the engine: how a policy says it decides.

A policy returns a `Decision` (policies/base.py): one of a few rules the engine's compiled loop
implements (kernel.py) and the arrays that rule needs. This module knows neither the engine nor
any policy, so both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from app.sim import kernel


class Rule(IntEnum):
    FIXED = kernel.FIXED
    ROUND_ROBIN = kernel.ROUND_ROBIN
    UNIFORM = kernel.UNIFORM
    FASTEST = kernel.FASTEST
    EFT = kernel.EFT
    BANDIT = kernel.BANDIT


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
    estimate: np.ndarray | None = None  # (tasks, devices) seconds it believes; default: true
    allowed: np.ndarray | None = None  # (devices,) bool: EFT prefers these, others if none fit
    draws: np.ndarray | None = None  # (tasks,) uniforms for UNIFORM
    fixed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # device, partner, share
    splits: SplitTables | None = None
    bandit: BanditArrays | None = None
    # (tasks, devices) seconds EFT adds to a whole task's finish to choose its device, never to
    # the times it records (PEFT: its optimistic cost table; CPOP: +inf off the critical-path
    # processor); each task needs a finite value on some device it fits. Not with `splits`.
    bias: np.ndarray | None = None
