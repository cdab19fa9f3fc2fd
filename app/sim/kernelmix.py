"""Tasks drawn from a kernel profile: what a synthetic workload's tasks are when the hardware is a
measured machine.

A task is one call of one of the profile's kernels on b x b tiles of doubles, so that the profile
says how long it really takes on each kind of device (measured.py). The mix, for n tasks, from
the generator it is handed:

- **kernel**: uniform over the profile's kernels timed on every kind of device the cluster has
  (contention "alone"), in the profile's kernel order (profile.KERNELS); kernels timed on one
  kind only are left out, since a task must be able to run anywhere the cluster offers;
- **tile size b**: log-uniform over the sizes measured for that kernel on every one of those
  kinds (the intersection of their ranges), rounded to a whole number: each octave of sizes gets
  the same share of tasks, so the small tiles where a GPU loses to a core are as present as the
  large ones where it wins by 90x. No size outside the measured range is drawn (no extrapolation).

The draws come in that order: every task's kernel, then every task's size (one uniform each).

What the task is, from (kernel, b), as tiled.py states it for the same kernels: `size` its flops
in GFLOP (tiled.kernel_flops), `memory` the MB of the tiles it touches (`TILES_TOUCHED` tiles of
b^2 x 8 bytes), `intensity` 1 (a dense kernel is data parallel: the cost model's estimate is
flops / the device's peak), its category the kernel's name, `tile_size` b.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.sim.profile import NotInProfile, Profile
from app.sim.tiled import BYTES_PER_ELEMENT, kernel_flops_of

#: Distinct b x b tiles each kernel reads or writes, as in the tile algorithms of tiled.py:
#: gemm C -= A B^T, syrk C -= A A^T, trsm B = B L^-T, potrf/getrf/geqrt on their own tile,
#: ormqr (V_kk, A_kn), tpqrt (R_kk, A_mk), tpmqrt (V_mk, A_kn, A_mn).
TILES_TOUCHED = {
    "gemm": 3,
    "syrk": 2,
    "trsm": 2,
    "potrf": 1,
    "getrf": 1,
    "geqrt": 1,
    "ormqr": 2,
    "tpqrt": 2,
    "tpmqrt": 3,
}


@dataclass(frozen=True)
class TaskDraw:
    """The attributes of n drawn tasks (units as in workload.py); `category` indexes
    `category_names`."""

    size: np.ndarray
    intensity: np.ndarray
    memory: np.ndarray
    category: np.ndarray
    category_names: tuple[str, ...]
    tile_size: np.ndarray


@dataclass(frozen=True)
class KernelMix:
    """The kernels a workload may draw, each with the tile sizes it may draw (inclusive)."""

    kernels: tuple[str, ...]
    low: tuple[int, ...]
    high: tuple[int, ...]

    @classmethod
    def of(cls, profile: Profile, devices: list[str]) -> KernelMix:
        """The mix of `profile` on a cluster with these kinds of device (module docstring).
        `NotInProfile` when no kernel is timed on all of them at a common size."""
        kernels, low, high = [], [], []
        for kernel in profile.kernels:
            try:
                curves = [profile.curve(kernel, device) for device in devices]
            except NotInProfile:
                continue
            lo = int(np.ceil(max(curve.sizes[0] for curve in curves)))
            hi = int(np.floor(min(curve.sizes[-1] for curve in curves)))
            if lo <= hi:
                kernels.append(kernel)
                low.append(lo)
                high.append(hi)
        if not kernels:
            raise NotInProfile(
                f"profile {profile.name!r} times no kernel on every kind of device of the "
                f"cluster ({', '.join(devices)}) at a common tile size"
            )
        return cls(tuple(kernels), tuple(low), tuple(high))

    def draw(self, n: int, rng: np.random.Generator) -> TaskDraw:
        """n tasks' kernels and tile sizes, and what follows from them (module docstring)."""
        category = rng.integers(0, len(self.kernels), n).astype(np.int32)
        low = np.log(np.asarray(self.low, dtype=np.float64))[category]
        high = np.log(np.asarray(self.high, dtype=np.float64))[category]
        drawn = np.rint(np.exp(low + rng.random(n) * (high - low))).astype(np.int64)
        tile = np.clip(drawn, np.exp(low).round(), np.exp(high).round()).astype(np.int64)
        flops = np.empty(n)
        touched = np.empty(n)
        for code, kernel in enumerate(self.kernels):
            tasks = category == code
            flops[tasks] = kernel_flops_of(kernel, tile[tasks])
            touched[tasks] = TILES_TOUCHED[kernel]
        return TaskDraw(
            size=flops / 1e9,
            intensity=np.ones(n),
            memory=touched * tile.astype(np.float64) ** 2 * BYTES_PER_ELEMENT / 1e6,
            category=category,
            category_names=self.kernels,
            tile_size=tile,
        )
