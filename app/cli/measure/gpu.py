"""The GPU side of `hms profile measure`: the tile kernels of Cholesky, LU and QR on a CUDA GPU
through CuPy (cuBLAS and cuSOLVER), and the host<->device transfers, where CuPy finds a device.

Everything here calls an `ArrayModule`: the few functions of CuPy and cupyx.scipy.linalg it
uses, so the same measuring code runs on NumPy/SciPy in the unit tests (CI has no GPU). It has
not yet been run on a real GPU in this project.

CuPy exposes neither LAPACK's compact-WY tile QR routines nor BLAS-3 calls with alpha/beta, so
each kernel is the closest operation CuPy has, on the same b x b double tiles, checked once per
cell against the same residual as the CPU kernel (app/cli/measure/kernels.py):

==========  =====================================================  =========================
kernel      CuPy call (library routine underneath)                 flops vs the LAPACK kernel
==========  =====================================================  =========================
gemm        ``c -= a @ b.T`` (cuBLAS dgemm + an element-wise pass)  same (2b^3)
syrk        ``c -= a @ a.T`` (a full dgemm: no public dsyrk)        2b^3 instead of b^3
trsm        ``solve_triangular(l, b.T, lower=True).T`` (dtrsm)      same (b^3)
potrf       ``cupy.linalg.cholesky`` (cuSOLVER dpotrf)              same (b^3/3)
getrf       ``cupyx.scipy.linalg.lu_factor`` (cuSOLVER dgetrf)      same (2b^3/3)
geqrt       ``cupy.linalg.qr(a, mode="r")`` (cuSOLVER dgeqrf)       same, without forming T
tpqrt       ``qr([r; b], mode="r")``: dgeqrf of the 2b x b stack   10b^3/3 instead of 2b^3
ormqr       ``c -= y @ (t.T @ (y.T @ c))``: Q^T C as 3 dgemm       6b^3 instead of ~2b^3
tpmqrt      ``w = t.T @ (a + v.T @ b); a -= w; b -= v @ w``         6b^3 instead of 4b^3
==========  =====================================================  =========================

ormqr and tpmqrt apply the block reflector Q = I - Y T Y^T of a geqrt (Y = V, unit lower) or a
tpqrt (Y = [I; V]) with one block of b columns (T is b x b), as GEMMs, the way GPU tile
libraries apply reflectors; the CPU kernels use inner blocks of 32. Where CuPy's call does more
flops than the LAPACK kernel, the GPU time is an upper bound of what a tuned tile kernel takes.

Times are host wall-clock around each call with the device synchronised before and after
(`time.perf_counter_ns`, the same loop as the CPU: app/cli/measure/timing.py), so a time
includes the launch overhead a runtime system pays, not only the time the GPU computes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lapack

from app.cli.measure.kernels import KERNELS, Kernel, Operands
from app.cli.measure.timing import Budget, WarmOperands, time_cell

#: A computed tile whose relative error exceeds this is wrong, not rounded: the CPU kernels
#: stay below 1e-12 (tests/unit/test_profile_measure.py); a GPU in double precision likewise.
RESIDUAL_TOLERANCE = 1e-8
#: A transfer of one double: its time is the link's latency (a copy's fixed cost).
LATENCY_BYTES = 8
#: 64 MiB: large enough that the fixed cost is well under 1 % of the copy on PCIe 3-5
#: (2.5-5 ms at 12-25 GB/s against ~10 us), small enough for any GPU. Page-locked host memory,
#: as a runtime system uses for tiles (a pageable copy goes through a staging buffer).
BANDWIDTH_BYTES = 64 * 2**20
#: Copies timed per link and size, after warm-up ones (the median is kept: robust to a stray
#: interrupt, and the first copy of a buffer also maps its pages).
LINK_REPEATS = 20
LINK_WARMUP = 3


class NoGpu(Exception):
    """No CUDA GPU to measure; the message says why (CuPy missing, no driver, no device)."""


class GpuMeasurementFailed(RuntimeError):
    """A GPU kernel computed a wrong tile: its timings would not be of the kernel's work."""


@dataclass(frozen=True)
class ArrayModule:
    """What the GPU measurement calls, and of which device.

    `xp` has NumPy's API on device arrays (cupy: `array`, `empty`, `concatenate`,
    `linalg.cholesky`, `linalg.qr`, the `@` and `-=` of its arrays); `linalg` has SciPy's
    `solve_triangular` and `lu_factor` on them (cupyx.scipy.linalg). `synchronize()` waits
    until the device has finished all work; `to_host(array)` is a NumPy copy of a device
    array; `copy_to_device(host, device)` and `copy_to_host(device, host)` copy between
    existing buffers of float64; `empty_pinned(n)` is a page-locked host buffer of n float64.
    `versions` go into the profile's provenance libraries (cupy, CUDA runtime and driver)."""

    device: str
    xp: Any
    linalg: Any
    synchronize: Callable[[], None]
    to_host: Callable[[Any], np.ndarray]
    copy_to_device: Callable[[np.ndarray, Any], None]
    copy_to_host: Callable[[Any, np.ndarray], None]
    empty_pinned: Callable[[int], np.ndarray]
    versions: dict[str, str | None]


def _cuda_version(number: int) -> str:
    """CUDA's version integers, 1000 x major + 10 x minor (12040), as "12.4"."""
    return f"{number // 1000}.{number % 1000 // 10}"


def find_gpu() -> ArrayModule:
    """CuPy on the current CUDA device (the first one CUDA_VISIBLE_DEVICES leaves);
    `NoGpu` saying why there is none. CuPy is imported here only: it is an optional extra."""
    try:
        import cupy
        import cupyx
        import cupyx.scipy.linalg
    except ImportError as exc:  # not installed, or installed without its CUDA libraries
        raise NoGpu(f"CuPy cannot be imported: {exc}; pip install -e '.[gpu]'") from exc
    runtime = cupy.cuda.runtime
    try:
        if runtime.getDeviceCount() < 1:
            raise NoGpu(f"CuPy {cupy.__version__} sees no CUDA device")
        name = runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
        versions: dict[str, str | None] = {
            "cupy": str(cupy.__version__),
            "cuda_runtime": _cuda_version(runtime.runtimeGetVersion()),
            "cuda_driver": _cuda_version(runtime.driverGetVersion()),
        }
    except NoGpu:
        raise
    except Exception as exc:  # no driver, a broken one: CuPy raises its own CUDA errors
        raise NoGpu(f"CuPy {cupy.__version__} cannot reach a CUDA device: {exc}") from exc
    return ArrayModule(
        device=name.decode() if isinstance(name, bytes) else str(name),
        xp=cupy,
        linalg=cupyx.scipy.linalg,
        synchronize=runtime.deviceSynchronize,
        to_host=cupy.asnumpy,
        copy_to_device=lambda host, device: device.set(host),
        copy_to_host=lambda device, host: device.get(out=host),
        empty_pinned=lambda n: cupyx.empty_pinned((n,), dtype=np.float64),
        versions=versions,
    )


# The kernels --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceKernel(Kernel):
    """A tile kernel whose operands live on `gpu`: `operands` uploads them, `fresh` copies the
    overwritten ones on the device and waits for the copies, and `call` waits for the kernel,
    so timing.time_call's host clock sees exactly one call. `residual` brings the operands and
    the output back and applies the CPU kernel's residual."""

    gpu: ArrayModule

    def fresh(self, pristine: Operands) -> Operands:
        xp = self.gpu.xp
        operands = tuple(
            xp.array(op, order="F", copy=True) if i in self.overwritten else op
            for i, op in enumerate(pristine)
        )
        self.gpu.synchronize()
        return operands


@dataclass(frozen=True)
class _Recipe:
    """How one kernel runs on the device: its host operands, the indices `call` overwrites,
    the call, and its output in the form the CPU kernel's residual reads."""

    operands: Callable[[int, np.random.Generator], Operands]
    overwritten: tuple[int, ...]
    call: Callable[[ArrayModule, Operands], Any]
    as_cpu_output: Callable[[ArrayModule, Any], Any]


def _gemm(gpu: ArrayModule, ops: Operands) -> Any:
    a, b, c = ops  # C <- C - A B^T
    c -= a @ b.T
    return c


def _syrk(gpu: ArrayModule, ops: Operands) -> Any:
    a, c = ops  # C <- C - A A^T (both triangles)
    c -= a @ a.T
    return c


def _trsm(gpu: ArrayModule, ops: Operands) -> Any:
    l_, b = ops  # X L^T = B, i.e. L X^T = B^T
    return gpu.linalg.solve_triangular(l_, b.T, lower=True, overwrite_b=True, check_finite=False).T


def _potrf(gpu: ArrayModule, ops: Operands) -> Any:
    return gpu.xp.linalg.cholesky(ops[0])


def _getrf(gpu: ArrayModule, ops: Operands) -> Any:
    return gpu.linalg.lu_factor(ops[0], overwrite_a=True, check_finite=False)


def _geqrt(gpu: ArrayModule, ops: Operands) -> Any:
    return gpu.xp.linalg.qr(ops[0], mode="r")


def _tpqrt(gpu: ArrayModule, ops: Operands) -> Any:
    r, b = ops  # the R of [R; B]
    return gpu.xp.linalg.qr(gpu.xp.concatenate((r, b)), mode="r")


def _ormqr(gpu: ArrayModule, ops: Operands) -> Any:
    y, t, c = ops  # C <- Q^T C = C - Y T^T Y^T C
    c -= y @ (t.T @ (y.T @ c))
    return c


def _tpmqrt(gpu: ArrayModule, ops: Operands) -> Any:
    v, t, a, b = ops  # [A; B] <- Q^T [A; B], Y = [I; V]
    w = t.T @ (a + v.T @ b)
    a -= w
    b -= v @ w
    return a, b


def _tile(b: int, rng: np.random.Generator) -> np.ndarray:
    return np.asfortranarray(rng.standard_normal((b, b)))


def _ormqr_operands(b: int, rng: np.random.Generator) -> Operands:
    """Y (unit lower) and T (b x b) of a one-block geqrt of C, and C: Q^T C must be R."""
    c = _tile(b, rng)
    v, t, _info = lapack.dgeqrt(b, c)
    y = np.tril(v, -1) + np.eye(b)
    return np.asfortranarray(y), np.asfortranarray(t), c


def _tpmqrt_operands(b: int, rng: np.random.Generator) -> Operands:
    """V and T (b x b) of a one-block tpqrt of [R; B], and R and B: Q^T must annihilate B."""
    r, bottom = KERNELS["tpqrt"].operands(b, rng)
    _r, v, t, _info = lapack.dtpqrt(0, b, r, bottom)
    return np.asfortranarray(v), np.asfortranarray(t), r, bottom


def _host(gpu: ArrayModule, out: Any) -> np.ndarray:
    return gpu.to_host(out)


RECIPES: dict[str, _Recipe] = {
    "gemm": _Recipe(KERNELS["gemm"].operands, (2,), _gemm, _host),
    "syrk": _Recipe(KERNELS["syrk"].operands, (1,), _syrk, _host),
    "trsm": _Recipe(KERNELS["trsm"].operands, (1,), _trsm, _host),
    "potrf": _Recipe(KERNELS["potrf"].operands, (), _potrf, lambda g, o: (g.to_host(o), 0)),
    "getrf": _Recipe(
        KERNELS["getrf"].operands, (0,), _getrf, lambda g, o: (g.to_host(o[0]), g.to_host(o[1]), 0)
    ),
    "geqrt": _Recipe(KERNELS["geqrt"].operands, (), _geqrt, lambda g, o: (g.to_host(o), None, 0)),
    "tpqrt": _Recipe(
        KERNELS["tpqrt"].operands, (), _tpqrt, lambda g, o: (g.to_host(o), None, None, 0)
    ),
    "ormqr": _Recipe(_ormqr_operands, (2,), _ormqr, lambda g, o: (g.to_host(o), 0)),
    "tpmqrt": _Recipe(
        _tpmqrt_operands, (2, 3), _tpmqrt, lambda g, o: (g.to_host(o[0]), g.to_host(o[1]), 0)
    ),
}


def device_kernel(gpu: ArrayModule, name: str) -> DeviceKernel:
    """Kernel `name` (one of KERNELS) on `gpu`."""
    recipe, cpu = RECIPES[name], KERNELS[name]

    def operands(b: int, rng: np.random.Generator) -> Operands:
        uploaded = tuple(gpu.xp.array(op, order="F") for op in recipe.operands(b, rng))
        gpu.synchronize()
        return uploaded

    def call(ops: Operands) -> Any:
        out = recipe.call(gpu, ops)
        gpu.synchronize()
        return out

    def residual(pristine: Operands, out: Any) -> float:
        host = tuple(gpu.to_host(op) for op in pristine)
        return cpu.residual(host, recipe.as_cpu_output(gpu, out))

    return DeviceKernel(name, operands, recipe.overwritten, call, residual, gpu)


def check_kernel(kernel: Kernel, pristine: Operands) -> None:
    """One call on fresh operands must compute the kernel's tile operation."""
    error = kernel.residual(pristine, kernel.call(kernel.fresh(pristine)))
    if not error < RESIDUAL_TOLERANCE:
        raise GpuMeasurementFailed(
            f"{kernel.name} on the GPU computed a wrong tile (relative error {error:.3g})"
        )


Progress = Callable[[int, int, str], None]  # cells done, cells in all, what is measured now


def measure_gpu_timings(
    gpu: ArrayModule,
    sizes: tuple[int, ...],
    kernels: tuple[str, ...],
    budget: Budget,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[tuple[str, int, np.ndarray]]:
    """(kernel, size, per-call seconds) of every cell on `gpu`, alone, after checking once per
    cell that the kernel computes its tile."""
    rng = np.random.default_rng([seed, 1])  # not the CPU's tiles: a stream of its own
    total = len(sizes) * len(kernels)
    cells: list[tuple[str, int, np.ndarray]] = []
    for size in sizes:
        for name in kernels:
            if progress:
                progress(len(cells), total, f"{name} b={size} on the GPU")
            kernel = device_kernel(gpu, name)
            pristine = kernel.operands(size, rng)
            check_kernel(kernel, pristine)
            # The same operands every call (warm in the GPU's cache): the cold pool of the CPU
            # side is not applied to the GPU yet.
            cells.append((name, size, time_cell(kernel, WarmOperands(kernel, pristine), budget)))
    return cells


# The links ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkTiming:
    """One direction of the host<->device link, as the profile's links[] has it."""

    source: str
    target: str
    latency_s: float
    bandwidth_bytes_per_s: float


def _copy_seconds(gpu: ArrayModule, copy: Callable[[], None], repeats: int) -> float:
    """The median seconds of one `copy`, the device idle before and waited for after."""
    for _ in range(LINK_WARMUP):
        copy()
    times = []
    for _ in range(repeats):
        gpu.synchronize()
        start = time.perf_counter_ns()
        copy()
        gpu.synchronize()
        times.append((time.perf_counter_ns() - start) * 1e-9)
    return float(np.median(times))


def _transfer_seconds(gpu: ArrayModule, to_device: bool, nbytes: int, repeats: int) -> float:
    """Median seconds of one copy of `nbytes` (whole doubles) in one direction."""
    n = max(1, nbytes // 8)
    host, device = gpu.empty_pinned(n), gpu.xp.empty(n, dtype=np.float64)
    host[:] = 1.0  # touch every page before timing
    if to_device:
        return _copy_seconds(gpu, lambda: gpu.copy_to_device(host, device), repeats)
    return _copy_seconds(gpu, lambda: gpu.copy_to_host(device, host), repeats)


def _direction(gpu: ArrayModule, to_device: bool, large_bytes: int, repeats: int) -> LinkTiming:
    latency = _transfer_seconds(gpu, to_device, LATENCY_BYTES, repeats)
    large = _transfer_seconds(gpu, to_device, large_bytes, repeats)
    # time = latency + bytes / bandwidth (app/sim/profile.py's Link); a large copy that took no
    # longer than a tiny one (not on a real link) is all bandwidth.
    moving = large - latency if large > latency else large
    source, target = ("cpu", "gpu") if to_device else ("gpu", "cpu")
    return LinkTiming(source, target, latency, 8 * max(1, large_bytes // 8) / max(moving, 1e-9))


def measure_links(
    gpu: ArrayModule, large_bytes: int = BANDWIDTH_BYTES, repeats: int = LINK_REPEATS
) -> list[LinkTiming]:
    """Host -> device, then device -> host: latency from a copy of one double, bandwidth from
    copies of `large_bytes` between page-locked host memory and the device."""
    return [_direction(gpu, to_device, large_bytes, repeats) for to_device in (True, False)]
