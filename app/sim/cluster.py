"""Clusters of CPU cores and GPUs, as struct-of-arrays.

Units: `speed` and `scalar_speed` in GFLOP/s, `memory` in MB, `bandwidth` in MB/s between host
memory and the device (CPU cores read host memory directly: infinite), `latency` in seconds per
transfer, `memory_bandwidth` in GB/s between the device and its own memory (a datasheet figure,
kept for the device's description; no time is computed from it), `power_busy` / `power_idle` in
W, `price` in currency units per hour.

Defaults (one core of a current server CPU; one data-centre GPU behind PCIe 4.0):

| device | speed | scalar speed | memory | bandwidth | latency | memory bw | busy/idle W | price/h |
|--------|-------|--------------|--------|-----------|---------|-----------|-------------|---------|
| CPU core | 40 | 40 | 32 GB | - | 0 | 5 GB/s | 12 / 3 | 0.04 |
| GPU | 1500 | 10 | 16 GB | 12 GB/s | 20 us | 900 GB/s | 250 / 40 | 2.50 |

Memory bandwidth: a core's share of a server socket's DRAM bandwidth when every core streams
(AMD EPYC 9654: 12 channels of DDR5-4800 = 460.8 GB/s over 96 cores = 4.8 GB/s; Intel Xeon
Platinum 8480+: 307.2 GB/s over 56 cores = 5.5 GB/s); the GPU's HBM2 as the datasheet of the
16 GB, 250 W, PCIe card the other GPU figures describe (NVIDIA V100 PCIe: 900 GB/s).

A hardware profile (measured matmul timings, see `calibrate`) replaces the speeds, the GPU's
bandwidth and latency with fitted values.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
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
    memory_bandwidth: float = 5.0  # GB/s


DEFAULT_CPU = DeviceModel(
    speed=40.0,
    scalar_speed=40.0,
    memory=32_768.0,
    bandwidth=float("inf"),
    latency=0.0,
    power_busy=12.0,
    power_idle=3.0,
    price=0.04,
    memory_bandwidth=5.0,
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
    memory_bandwidth=900.0,
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
    memory_bandwidth: np.ndarray
    #: Device names; None means cpu0.., gpu0.. by kind.
    labels: tuple[str, ...] | None = None

    @property
    def num_devices(self) -> int:
        return int(self.kind.shape[0])

    @property
    def cpus(self) -> np.ndarray:
        return np.flatnonzero(self.kind == DeviceKind.CPU)

    @property
    def gpus(self) -> np.ndarray:
        return np.flatnonzero(self.kind == DeviceKind.GPU)

    def model_groups(self, devices: np.ndarray) -> list[np.ndarray]:
        """`devices` grouped by identical cost-relevant characteristics (same kind, speeds,
        memory, links): within a group only the earliest available device can be the best
        choice, and the simulated hardware treats them alike (measured.py)."""
        keys = np.column_stack(
            [
                self.kind,
                self.speed,
                self.scalar_speed,
                self.memory,
                self.bandwidth,
                self.latency,
                self.memory_bandwidth,
            ]
        )[devices]
        groups: dict[tuple[float, ...], list[int]] = {}
        for device, key in zip(devices.tolist(), map(tuple, keys.tolist()), strict=True):
            groups.setdefault(key, []).append(device)
        return [np.array(group, dtype=np.int64) for group in groups.values()]

    def names(self) -> list[str]:
        """Stable, human-readable device names: cpu0, cpu1, ..., gpu0, ..."""
        if self.labels is not None:
            return list(self.labels)
        counters = {DeviceKind.CPU: 0, DeviceKind.GPU: 0}
        names = []
        for kind in self.kind:
            kind = DeviceKind(int(kind))
            names.append(f"{kind.name.lower()}{counters[kind]}")
            counters[kind] += 1
        return names

    @classmethod
    def of(
        cls, models: Sequence[tuple[DeviceKind, DeviceModel]], labels: Sequence[str] | None = None
    ) -> Cluster:
        if not models:
            raise ValueError("a cluster needs at least one device")

        def column(field: str) -> np.ndarray:
            return np.array([getattr(model, field) for _, model in models], dtype=np.float64)

        return cls(
            kind=np.array([kind for kind, _ in models], dtype=np.int8),
            **{f.name: column(f.name) for f in fields(DeviceModel)},
            labels=None if labels is None else tuple(labels),
        )

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
        return cls.of([(DeviceKind.CPU, cpu)] * cpus + [(DeviceKind.GPU, gpu)] * gpus)

    @classmethod
    def processors(cls, count: int) -> Cluster:
        """`count` abstract processors p0.. for workloads with explicit costs (the literature's
        setting: only the cost tables matter; power and price are a default core's)."""
        return cls.of([(DeviceKind.CPU, DEFAULT_CPU)] * count, [f"p{i}" for i in range(count)])


@dataclass(frozen=True)
class HardwareProfile:
    """Measured matmul timings: C = A @ B with N x N matrices, for each N in `sizes`.

    `cpu_times` used `cpu_threads` cores; `gpu_times` include copying A and B to the GPU and C
    back (3 N^2 elements of `element_bytes`) unless the measurement kept data resident, in which
    case the fit finds no transfer cost.
    """

    sizes: np.ndarray
    cpu_times: np.ndarray
    gpu_times: np.ndarray
    cpu_threads: int = 1
    element_bytes: int = 4
    gpu_memory: float | None = None  # MB

    @classmethod
    def from_json(cls, document: dict[str, object]) -> HardwareProfile:
        try:
            sizes = np.asarray(document["profiled_sizes"], dtype=np.float64)
            cpu = np.asarray(document["cpu_times"], dtype=np.float64)
            gpu = np.asarray(document["gpu_times"], dtype=np.float64)
        except KeyError as missing:
            raise ValueError(f"hardware profile lacks {missing}") from None
        except (TypeError, ValueError):
            raise ValueError(
                "profiled_sizes, cpu_times and gpu_times must be lists of numbers"
            ) from None
        if not (sizes.ndim == cpu.ndim == gpu.ndim == 1) or not (
            sizes.size == cpu.size == gpu.size
        ):
            raise ValueError("profiled_sizes, cpu_times and gpu_times must have the same length")
        if sizes.size < 3:
            raise ValueError("a hardware profile needs at least 3 sizes to fit the GPU curve")
        if not (
            np.all(np.isfinite([sizes, cpu, gpu]))
            and sizes.min() > 0
            and cpu.min() > 0
            and gpu.min() > 0
        ):
            raise ValueError("profile sizes and times must be positive numbers")
        memory = document.get("gpu_memory_mb")
        return cls(
            sizes=sizes,
            cpu_times=cpu,
            gpu_times=gpu,
            cpu_threads=int(document.get("cpu_threads", 1)),  # type: ignore[call-overload]
            element_bytes=int(document.get("element_bytes", 4)),  # type: ignore[call-overload]
            gpu_memory=None if memory is None else float(memory),  # type: ignore[arg-type]
        )

    @property
    def gflop(self) -> np.ndarray:
        return 2.0 * self.sizes**3 / 1e9

    @property
    def transfer_mb(self) -> np.ndarray:
        return 3.0 * self.sizes**2 * self.element_bytes / 1e6


def calibrate(
    profile: HardwareProfile, cpu: DeviceModel = DEFAULT_CPU, gpu: DeviceModel = DEFAULT_GPU
) -> tuple[DeviceModel, DeviceModel]:
    """Fit the device models to a profile.

    CPU core speed: GFLOP / cpu_time / cpu_threads, the median over the larger half of the sizes
    (where fixed overheads no longer matter). GPU: gpu_time = latency + MB / bandwidth +
    GFLOP / speed, fitted by non-negative least squares, so the model reproduces the measured
    speed-up curve: slower than the CPU for small matrices (latency, transfers), much faster for
    large ones. The GPU's scalar speed keeps its default ratio to the CPU core's speed.
    """
    large = profile.sizes >= np.median(profile.sizes)
    core_speed = (
        float(np.median(profile.gflop[large] / profile.cpu_times[large])) / profile.cpu_threads
    )
    latency, seconds_per_mb, seconds_per_gflop = _nonnegative_fit(
        np.column_stack([np.ones_like(profile.sizes), profile.transfer_mb, profile.gflop]),
        profile.gpu_times,
    )
    if seconds_per_gflop <= 0:
        raise ValueError("the GPU timings do not grow with the matrix size: cannot fit a GPU speed")
    fitted_cpu = replace(cpu, speed=core_speed, scalar_speed=core_speed)
    fitted_gpu = replace(
        gpu,
        speed=1.0 / seconds_per_gflop,
        scalar_speed=gpu.scalar_speed * core_speed / cpu.speed,
        # Below a picosecond per MB the fit says "no transfer in the timings".
        bandwidth=float("inf") if seconds_per_mb <= 1e-12 else 1.0 / seconds_per_mb,
        latency=latency,
        memory=profile.gpu_memory or gpu.memory,
    )
    return fitted_cpu, fitted_gpu


def _nonnegative_fit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0: the best over all subsets of free columns
    (exact for the three columns used here)."""
    best, best_error = np.zeros(a.shape[1]), float(len(b))  # the error of all zeros
    for count in range(1, a.shape[1] + 1):
        for subset in itertools.combinations(range(a.shape[1]), count):
            columns = list(subset)
            # Relative errors: every size counts, not only the slowest.
            weights = 1.0 / b
            coefficients, *_ = np.linalg.lstsq(
                a[:, columns] * weights[:, None], b * weights, rcond=None
            )
            if np.any(coefficients < 0):
                continue
            candidate = np.zeros(a.shape[1])
            candidate[columns] = coefficients
            error = float(np.sum(((a @ candidate - b) / b) ** 2))
            if error < best_error:
                best, best_error = candidate, error
    return best
