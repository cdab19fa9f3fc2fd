"""Clusters of CPU cores and GPUs, as struct-of-arrays.

Units: `speed` and `scalar_speed` in GFLOP/s, `memory` in MB, `bandwidth` in MB/s between host
memory and the device (CPU cores read host memory directly: infinite), `latency` in seconds per
transfer, `power_busy` / `power_idle` in W, `price` in currency units per hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class DeviceKind(IntEnum):
    CPU = 0
    GPU = 1


@dataclass(frozen=True)
class DeviceModel:
    """The characteristics shared by every device of one kind."""

    speed: float
    scalar_speed: float
    memory: float
    bandwidth: float
    latency: float
    power_busy: float
    power_idle: float
    price: float


# One core of a current server CPU, and one data-centre GPU behind PCIe 4.0. A GPU runs the
# data-parallel share of a task ~40x faster than a core, its serial share ~4x slower.
DEFAULT_CPU = DeviceModel(
    speed=40.0,
    scalar_speed=40.0,
    memory=32_768.0,
    bandwidth=float("inf"),
    latency=0.0,
    power_busy=12.0,
    power_idle=3.0,
    price=0.04,
)
DEFAULT_GPU = DeviceModel(
    speed=1_500.0,
    scalar_speed=10.0,
    memory=16_384.0,
    bandwidth=12_000.0,
    latency=20e-6,
    power_busy=250.0,
    power_idle=40.0,
    price=2.50,
)


@dataclass(frozen=True)
class Cluster:
    kind: np.ndarray
    speed: np.ndarray
    scalar_speed: np.ndarray
    memory: np.ndarray
    bandwidth: np.ndarray
    latency: np.ndarray
    power_busy: np.ndarray
    power_idle: np.ndarray
    price: np.ndarray

    @property
    def num_devices(self) -> int:
        return int(self.kind.shape[0])

    def names(self) -> list[str]:
        """Stable, human-readable device names: cpu0, cpu1, ..., gpu0, ..."""
        counters = {DeviceKind.CPU: 0, DeviceKind.GPU: 0}
        names = []
        for kind in self.kind:
            kind = DeviceKind(int(kind))
            names.append(f"{kind.name.lower()}{counters[kind]}")
            counters[kind] += 1
        return names

    @classmethod
    def homogeneous_kinds(
        cls,
        cpus: int,
        gpus: int,
        cpu: DeviceModel = DEFAULT_CPU,
        gpu: DeviceModel = DEFAULT_GPU,
    ) -> Cluster:
        """`cpus` identical CPU cores followed by `gpus` identical GPUs."""
        if cpus < 0 or gpus < 0 or cpus + gpus == 0:
            raise ValueError("a cluster needs at least one device")
        models = [cpu] * cpus + [gpu] * gpus
        kind = np.array([DeviceKind.CPU] * cpus + [DeviceKind.GPU] * gpus, dtype=np.int8)

        def column(field: str) -> np.ndarray:
            return np.array([getattr(model, field) for model in models], dtype=np.float64)

        return cls(
            kind=kind,
            speed=column("speed"),
            scalar_speed=column("scalar_speed"),
            memory=column("memory"),
            bandwidth=column("bandwidth"),
            latency=column("latency"),
            power_busy=column("power_busy"),
            power_idle=column("power_idle"),
            price=column("price"),
        )
