"""Workloads as struct-of-arrays, and the synthetic generator.

Units: `size` in GFLOP of work, `memory` in MB of input data that must be resident on the
device that runs the task, `arrival` in seconds since the start of the simulation.
`intensity` in [0, 1] is the share of a task's work that is data-parallel: that share runs at a
GPU's full rate, the rest at its much lower scalar rate (see costs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    size: np.ndarray
    intensity: np.ndarray
    memory: np.ndarray
    arrival: np.ndarray

    def __post_init__(self) -> None:
        n = self.size.shape[0]
        for name in ("size", "intensity", "memory", "arrival"):
            array = getattr(self, name)
            if array.shape != (n,):
                raise ValueError(f"workload.{name} has shape {array.shape}, expected ({n},)")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"workload.{name} contains NaN or infinite values")
        if n and (self.size.min() <= 0 or self.memory.min() < 0 or self.arrival.min() < 0):
            raise ValueError("task sizes must be > 0, memory and arrival times >= 0")
        if n and (self.intensity.min() < 0 or self.intensity.max() > 1):
            raise ValueError("task intensity must lie in [0, 1]")

    @property
    def num_tasks(self) -> int:
        return int(self.size.shape[0])


@dataclass(frozen=True)
class SyntheticParams:
    """Parameters of the synthetic generator; defaults give a mixed CPU/GPU-friendly load."""

    num_tasks: int
    arrival_rate: float = 100.0  # tasks per second (Poisson process)
    min_size: float = 1.0  # GFLOP; sizes are Pareto distributed above this
    size_tail: float = 1.8  # Pareto shape: smaller means heavier tail
    max_size: float = 2000.0  # GFLOP; caps the tail so one task cannot dominate a run
    gpu_friendly_share: float = 0.5  # weight of the high-intensity mode of the bimodal mix
    mb_per_gflop: float = 20.0  # memory grows with size, with log-normal noise
    memory_noise: float = 0.5  # sigma of that noise (natural log scale)
    max_memory: float = 24_000.0  # MB; above a default GPU's 16 GB, so some tasks fit only on CPUs


def synthetic_workload(params: SyntheticParams, rng: np.random.Generator) -> Workload:
    """Heavy-tailed sizes, bimodal intensity, memory correlated with size, Poisson arrivals."""
    n = params.num_tasks
    size = np.minimum((rng.pareto(params.size_tail, n) + 1.0) * params.min_size, params.max_size)
    gpu_friendly = rng.random(n) < params.gpu_friendly_share
    intensity = np.where(gpu_friendly, rng.beta(8.0, 1.5, n), rng.beta(1.5, 8.0, n))
    noise = rng.lognormal(mean=0.0, sigma=params.memory_noise, size=n)
    memory = np.clip(size * params.mb_per_gflop * noise, 1.0, params.max_memory)
    arrival = np.cumsum(rng.exponential(1.0 / params.arrival_rate, n))
    return Workload(size=size, intensity=intensity, memory=memory, arrival=arrival)
