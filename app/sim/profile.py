"""A kernel profile as the core reads it: what one machine measured, per (kernel, kind of device,
contention), as numpy arrays over the measured tile sizes, plus its host<->device links.

The JSON format and its validation live at the boundary (app/profilespec.py, docs/profiles.md);
this is the plain, frozen view the truth model will draw from. All times are in seconds, sizes
are the tile edge b (the kernel works on b x b tiles), bandwidths in bytes per second.

Between measured sizes a time is interpolated linearly in log(size)-log(time) space: kernel
times follow power laws (b^3 flops on b x b tiles) piecewise, so this is exact for a power law
and never overshoots the two neighbours. Outside the measured range there is no answer
(`NotInProfile`): an extrapolation would be a guess the profile does not contain.

A draw follows the measured distribution at that size:

- with quantiles (p05, p50, p95): a two-piece log-normal through all three, median p50,
  sigma_low = ln(p50 / p05) / z, sigma_high = ln(p95 / p50) / z, z = 1.6449 (the normal's 95 %
  point), so a draw is below p05 5 % of the time and above p95 5 % of the time, and the tail
  may be longer on one side than on the other (timings usually have a long right tail);
- with mean and std only: the log-normal with exactly that mean and std,
  sigma^2 = ln(1 + (std / mean)^2), mu = ln(mean) - sigma^2 / 2;
- with neither (a source that gives a mean only): the mean, every time. No spread is invented.

Between measured sizes the quantiles and the mean are interpolated log-log like the mean, and
the coefficient of variation std / mean linearly in log(size); a kind of spread is used only
when both neighbouring sizes have it. Every draw consumes exactly one standard normal from the
generator, whatever the kind of spread, so a stream of draws does not shift when a profile gains
or loses quantiles: the same generator state gives the same times, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

#: The kernels of tiled Cholesky, LU and QR a profile may time (LAPACK/PLASMA names).
KERNELS = ("gemm", "syrk", "trsm", "potrf", "getrf", "geqrt", "tpqrt", "ormqr", "tpmqrt")

#: "alone": nothing else ran during the measurement; "all_busy": every core ran the same kernel
#: at once (StarPU-style calibration: cores share memory bandwidth and caches).
CONTENTIONS = ("alone", "all_busy")

#: The standard normal's 95 % point: p05 and p95 are 1.6449 sigma from the median.
Z95 = 1.6448536269514722


class NotInProfile(ValueError):
    """The profile has no time for this: a (kernel, device, contention) it did not measure, or a
    size outside the measured range (no extrapolation). The boundary maps it to a 422."""


class InvalidProfile(ValueError):
    """The arrays of a curve are malformed (the boundary validates first; this guards the core)."""


@dataclass(frozen=True)
class TimingCurve:
    """The timings of one (kernel, device, contention), one entry per measured size, ascending.

    Shapes: `sizes` (n,) int64 tile edges, strictly increasing; `mean_s` (n,) float64 > 0;
    `std_s` (n,) float64 >= 0, NaN where the source gives none; `quantiles_s` (n, 3) float64
    columns p05, p50, p95, a row of NaN where unknown; `repeats` (n,) int64, 0 where unknown.
    """

    sizes: np.ndarray
    mean_s: np.ndarray
    std_s: np.ndarray
    quantiles_s: np.ndarray
    repeats: np.ndarray

    def __post_init__(self) -> None:
        n = self.sizes.shape[0] if self.sizes.ndim == 1 else -1
        if n < 1:
            raise InvalidProfile("a curve needs at least one size")
        shapes = (self.mean_s.shape, self.std_s.shape, self.repeats.shape)
        if any(shape != (n,) for shape in shapes) or self.quantiles_s.shape != (n, 3):
            raise InvalidProfile("a curve's arrays must have one entry per size")
        if np.any(np.diff(self.sizes) <= 0) or self.sizes[0] < 1:
            raise InvalidProfile("sizes must be >= 1 and strictly increasing")
        if not np.all(np.isfinite(self.mean_s) & (self.mean_s > 0)):
            raise InvalidProfile("mean times must be finite and > 0")
        for array in (self.sizes, self.mean_s, self.std_s, self.quantiles_s, self.repeats):
            array.setflags(write=False)

    @classmethod
    def from_points(
        cls,
        sizes: ArrayLike,
        mean_s: ArrayLike,
        std_s: ArrayLike | None = None,
        quantiles_s: ArrayLike | None = None,
        repeats: ArrayLike | None = None,
    ) -> TimingCurve:
        """A curve from per-size values in any order (sorted here); None means unknown."""
        size = np.asarray(sizes, dtype=np.int64)
        order = np.argsort(size, kind="stable")
        n = size.shape[0]
        std = np.full(n, np.nan) if std_s is None else np.asarray(std_s, dtype=np.float64)
        quantiles = (
            np.full((n, 3), np.nan)
            if quantiles_s is None
            else np.asarray(quantiles_s, dtype=np.float64).reshape(n, 3)
        )
        count = np.zeros(n, np.int64) if repeats is None else np.asarray(repeats, np.int64)
        return cls(
            sizes=size[order],
            mean_s=np.asarray(mean_s, dtype=np.float64)[order],
            std_s=std[order],
            quantiles_s=quantiles[order],
            repeats=count[order],
        )


@dataclass(frozen=True)
class Link:
    """A measured transfer path between two kinds of device: time(bytes) = latency + bytes / bw."""

    source: str
    target: str
    latency_s: float
    bandwidth_bytes_per_s: float

    def transfer_time(self, num_bytes: float) -> float:
        return self.latency_s + num_bytes / self.bandwidth_bytes_per_s


@dataclass(frozen=True)
class _Bracket:
    """Where sizes fall among a curve's measured sizes: between `lo` and `lo + 1` at fraction
    `weight` of the way in log(size) (0 at a measured size, where lo is that size)."""

    lo: np.ndarray
    hi: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class Profile:
    """The timings and links one machine measured. `devices` are the kinds of device (e.g. "cpu",
    "gpu"); `curves` maps (kernel, device, contention) to its `TimingCurve`."""

    name: str
    devices: tuple[str, ...]
    curves: Mapping[tuple[str, str, str], TimingCurve]
    links: tuple[Link, ...] = ()
    #: The padded tables `_table` built, by (kernels, device, contention): a profile is frozen,
    #: so a table built once serves every later run that reads it.
    _tables: dict[tuple[tuple[str, ...], str, str], _Table] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def every_core_busy(self) -> Profile:
        """The machine as it runs when all its cores work at once: each CPU timing the one
        measured `all_busy` (cores share caches and memory bandwidth), under the key "alone" that
        the truth reads; a CPU timing measured alone only is dropped (no contention is
        invented). Other kinds of device keep their timings."""
        curves = {
            key: curve
            for key, curve in self.curves.items()
            if key[1] != "cpu" and key[2] == "alone"
        }
        for (kernel, device, contention), curve in self.curves.items():
            if device == "cpu" and contention == "all_busy":
                curves[kernel, device, "alone"] = curve
        return replace(self, name=f"{self.name}, every core busy", curves=curves)

    @property
    def kernels(self) -> tuple[str, ...]:
        """The kernels measured, in the order of `KERNELS`."""
        measured = {kernel for kernel, _, _ in self.curves}
        return tuple(kernel for kernel in KERNELS if kernel in measured)

    def curve(self, kernel: str, device: str, contention: str = "alone") -> TimingCurve:
        try:
            return self.curves[kernel, device, contention]
        except KeyError:
            raise NotInProfile(
                f"profile {self.name!r} has no timings of {kernel} on {device} ({contention})"
            ) from None

    def link(self, source: str, target: str) -> Link:
        for link in self.links:
            if (link.source, link.target) == (source, target):
                return link
        raise NotInProfile(f"profile {self.name!r} has no link from {source} to {target}")

    def time(self, kernel: str, device: str, size: float, contention: str = "alone") -> float:
        """The mean time in seconds of one call on b x b tiles, b = `size`."""
        return float(self.times(kernel, device, np.asarray([size]), contention)[0])

    def times(
        self, kernel: str, device: str, sizes: ArrayLike, contention: str = "alone"
    ) -> np.ndarray:
        """`time` for an array of sizes; float64, the shape of `sizes`."""
        size = np.asarray(sizes, dtype=np.float64)
        return self.times_of_calls(
            (kernel,), np.zeros(size.shape, np.int64), size, device, contention
        )

    def times_of_calls(
        self,
        kernels: tuple[str, ...],
        calls: np.ndarray,
        sizes: np.ndarray,
        device: str,
        contention: str = "alone",
    ) -> np.ndarray:
        """The mean times of calls of several kernels in one pass: call i runs `kernels[calls[i]]`
        on b x b tiles, b = `sizes[i]`. float64, the shape of `sizes`."""
        table = self._table(kernels, device, contention)
        at = table.bracket(calls, sizes)
        return _loglog(table.mean_s, at).reshape(sizes.shape)

    def draw(
        self,
        kernel: str,
        device: str,
        size: float,
        rng: np.random.Generator,
        contention: str = "alone",
    ) -> float:
        """One time in seconds drawn from the measured distribution (module docstring)."""
        return float(self.draws(kernel, device, np.asarray([size]), rng, contention)[0])

    def draws(
        self,
        kernel: str,
        device: str,
        sizes: ArrayLike,
        rng: np.random.Generator,
        contention: str = "alone",
    ) -> np.ndarray:
        """One draw per size, consuming exactly `sizes.size` standard normals from `rng`."""
        size = np.asarray(sizes, dtype=np.float64)
        calls = np.zeros(size.shape, np.int64)
        return self.draws_of_calls((kernel,), calls, size, device, rng, contention)

    def draws_of_calls(
        self,
        kernels: tuple[str, ...],
        calls: np.ndarray,
        sizes: np.ndarray,
        device: str,
        rng: np.random.Generator,
        contention: str = "alone",
    ) -> np.ndarray:
        """One draw per call (as `times_of_calls` names them), consuming exactly `sizes.size`
        standard normals from `rng`, taken kernel by kernel in the order of `kernels`, each over
        its calls in order: the stream `draws` would consume called once per kernel."""
        table = self._table(kernels, device, contention)
        at = table.bracket(calls, sizes)
        z = np.empty(sizes.size)
        z[np.argsort(calls.reshape(-1), kind="stable")] = rng.standard_normal(sizes.size)
        return _draw(table, at, z).reshape(sizes.shape)

    def _table(self, kernels: tuple[str, ...], device: str, contention: str) -> _Table:
        key = (kernels, device, contention)
        table = self._tables.get(key)
        if table is None:
            curves = [self.curve(kernel, device, contention) for kernel in kernels]
            table = _Table.of(self.name, key, curves)
            self._tables[key] = table
        return table


@dataclass(frozen=True)
class _Table:
    """The curves of several kernels on one kind of device and contention, one padded row per
    kernel, so that calls of every kernel are bracketed and drawn in one pass of numpy. Shapes,
    k kernels, m the most sizes a curve measured: `sizes` (k, m) float64, +inf past a curve's
    last size; `last` (k,) int64 the column of each curve's largest size; `mean_s`, `cv` (the
    coefficient of variation std / mean, NaN where unknown) (k * m,) and `quantiles_s`
    (3, k * m): rows flattened, as `_Bracket` indexes them. `key` names the table in errors."""

    profile: str
    key: tuple[tuple[str, ...], str, str]
    sizes: np.ndarray
    last: np.ndarray
    mean_s: np.ndarray
    cv: np.ndarray
    quantiles_s: np.ndarray

    @classmethod
    def of(
        cls, profile: str, key: tuple[tuple[str, ...], str, str], curves: list[TimingCurve]
    ) -> _Table:
        shape = (len(curves), max((curve.sizes.size for curve in curves), default=1))
        sizes, mean, cv = np.full(shape, np.inf), np.full(shape, np.nan), np.full(shape, np.nan)
        quantiles = np.full((3, *shape), np.nan)
        for row, curve in enumerate(curves):
            n = curve.sizes.size
            sizes[row, :n] = curve.sizes
            mean[row, :n] = curve.mean_s
            cv[row, :n] = curve.std_s / curve.mean_s
            quantiles[:, row, :n] = curve.quantiles_s.T
        last = np.array([curve.sizes.size - 1 for curve in curves], dtype=np.int64)
        return cls(profile, key, sizes, last, mean.ravel(), cv.ravel(), quantiles.reshape(3, -1))

    def bracket(self, calls: np.ndarray, size: np.ndarray) -> _Bracket:
        """Where each call's size falls on its kernel's curve; `NotInProfile` for a size outside
        the measured range (no extrapolation), naming the first kernel (in table order) and
        size that is."""
        flat, which = size.reshape(-1), calls.reshape(-1)
        measured, last = self.sizes[which], self.last[which]
        rows = np.arange(flat.size)
        highest = measured[rows, last]
        outside = ~np.isfinite(flat) | (flat < measured[:, 0]) | (flat > highest)
        if np.any(outside):
            self._refuse(which, flat, outside)
        # The measured sizes <= each size (the padding is +inf), so lo is its bracket's start.
        lo = np.sum(measured <= flat[:, None], axis=1) - 1
        hi = np.minimum(lo + 1, last)
        low = measured[rows, lo]
        exact = low == flat
        span = np.log(measured[rows, hi]) - np.log(low)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(exact, 0.0, (np.log(flat) - np.log(low)) / span)
        base = which * self.sizes.shape[1]
        return _Bracket(lo=base + lo, hi=base + np.where(exact, lo, hi), weight=weight)

    def _refuse(self, which: np.ndarray, flat: np.ndarray, outside: np.ndarray) -> None:
        row = int(which[outside].min())
        bad = flat[np.argmax(outside & (which == row))]
        (kernels, device, contention), measured = self.key, self.sizes[row]
        raise NotInProfile(
            f"profile {self.profile!r} measured {kernels[row]} on {device} ({contention}) for "
            f"tile sizes {int(measured[0])}..{int(measured[self.last[row]])}, not {bad:g}: "
            "no extrapolation"
        )


def _loglog(values: np.ndarray, at: _Bracket) -> np.ndarray:
    """Values interpolated linearly in log space; the stored value itself at a measured size."""
    lo, hi = values[at.lo], values[at.hi]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.exp(np.log(lo) + at.weight * (np.log(hi) - np.log(lo)))
    return np.where(at.weight == 0.0, lo, between)


def _draw(table: _Table, at: _Bracket, z: np.ndarray) -> np.ndarray:
    mean = _loglog(table.mean_s, at)
    cv = table.cv
    cv_here = cv[at.lo] + at.weight * (cv[at.hi] - cv[at.lo])
    sigma = np.sqrt(np.log1p(np.nan_to_num(cv_here) ** 2))
    from_moments = mean * np.exp(sigma * z - sigma**2 / 2)
    p05, p50, p95 = (_loglog(table.quantiles_s[j], at) for j in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        side = np.where(z < 0, np.log(p50 / p05), np.log(p95 / p50)) / Z95
        from_quantiles = p50 * np.exp(side * z)
    return np.where(
        np.isfinite(from_quantiles),
        from_quantiles,
        np.where(np.isfinite(cv_here), from_moments, mean),
    )
