"""The tile kernels of tiled Cholesky, LU and QR, each a call of SciPy's BLAS/LAPACK wrappers on
b x b double-precision tiles (Fortran order, so the wrappers copy nothing).

Each kernel has its pristine operands (built once per tile size, not timed), the indices of the
operands the call overwrites (copied fresh for every call, outside the timed region), the call
itself, and a residual that checks once that the call computed the right thing, so a timing is of
real work. The QR kernels are LAPACK's compact-WY tile routines, as in PLASMA/Chameleon:
geqrt = DGEQRT, tpqrt = DTPQRT with l=0 (TSQRT), ormqr = DGEMQRT (applies Q^T of a geqrt),
tpmqrt = DTPMQRT with l=0 (TSMQR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import blas, lapack

Operands = tuple[np.ndarray, ...]

#: Inner block size of the QR kernels (the T factors are IB x b), Chameleon's and PLASMA's usual
#: choice for tiles of a few hundred; capped at b for smaller tiles.
QR_INNER_BLOCK = 32


@dataclass(frozen=True)
class Kernel:
    """One tile kernel: `operands(b, rng)` builds its inputs on b x b tiles; `call` runs it on
    operands whose `overwritten` ones are fresh copies; `residual(pristine, output)` is the
    relative error (dimensionless) of that output against what the kernel must compute."""

    name: str
    operands: Callable[[int, np.random.Generator], Operands]
    overwritten: tuple[int, ...]
    call: Callable[[Operands], Any]
    residual: Callable[[Operands, Any], float]

    def fresh(self, pristine: Operands) -> Operands:
        """The operands for one call: copies of the ones the call overwrites."""
        return tuple(
            np.array(op, order="F", copy=True) if i in self.overwritten else op
            for i, op in enumerate(pristine)
        )


def _tile(b: int, rng: np.random.Generator) -> np.ndarray:
    return np.asfortranarray(rng.standard_normal((b, b)))


def _spd(b: int, rng: np.random.Generator) -> np.ndarray:
    """A well-conditioned symmetric positive definite tile (a diagonal block of Cholesky)."""
    m = rng.standard_normal((b, b))
    return np.asfortranarray(m @ m.T / b + 2.0 * np.eye(b))


def _lower(b: int, rng: np.random.Generator) -> np.ndarray:
    """A well-conditioned lower-triangular tile (a potrf result)."""
    return np.asfortranarray(np.linalg.cholesky(_spd(b, rng)))


def _relative(expected: np.ndarray, got: np.ndarray) -> float:
    scale = max(float(np.linalg.norm(expected)), 1e-300)
    return float(np.linalg.norm(expected - got)) / scale


def _inner_block(b: int) -> int:
    return min(QR_INNER_BLOCK, b)


# Cholesky ---------------------------------------------------------------------------------


def _gemm_call(ops: Operands) -> np.ndarray:
    a, b, c = ops  # C <- C - A B^T (the trailing update)
    return blas.dgemm(-1.0, a, b, beta=1.0, c=c, trans_b=1, overwrite_c=1)


def _gemm_residual(ops: Operands, out: Any) -> float:
    a, b, c = ops
    return _relative(c - a @ b.T, out)


def _syrk_call(ops: Operands) -> np.ndarray:
    a, c = ops  # C <- C - A A^T, lower triangle
    return blas.dsyrk(-1.0, a, beta=1.0, c=c, lower=1, overwrite_c=1)


def _syrk_residual(ops: Operands, out: Any) -> float:
    a, c = ops
    return _relative(np.tril(c - a @ a.T), np.tril(out))


def _trsm_call(ops: Operands) -> np.ndarray:
    l_, b = ops  # B <- B L^-T (the panel solve below a potrf)
    return blas.dtrsm(1.0, l_, b, side=1, lower=1, trans_a=1, overwrite_b=1)


def _trsm_residual(ops: Operands, out: Any) -> float:
    l_, b = ops
    return _relative(b, out @ l_.T)


def _potrf_call(ops: Operands) -> Any:
    return lapack.dpotrf(ops[0], lower=1, clean=1, overwrite_a=1)


def _potrf_residual(ops: Operands, out: Any) -> float:
    factor, info = out
    return np.inf if info != 0 else _relative(ops[0], factor @ factor.T)


# LU ---------------------------------------------------------------------------------------


def _dominant(b: int, rng: np.random.Generator) -> np.ndarray:
    """A diagonally dominant tile: LU without pivoting is stable on it, as on the diagonal
    tiles of tiled LU without pivoting (rows are still searched: partial pivoting is timed)."""
    return np.asfortranarray(rng.standard_normal((b, b)) + 2.0 * b * np.eye(b))


def _getrf_call(ops: Operands) -> Any:
    return lapack.dgetrf(ops[0], overwrite_a=1)


def _getrf_residual(ops: Operands, out: Any) -> float:
    lu, piv, info = out
    if info != 0:
        return np.inf
    permuted = np.array(ops[0])
    for row, pivot in enumerate(piv):  # 0-based LAPACK row interchanges, in order
        permuted[[row, pivot]] = permuted[[pivot, row]]
    lower = np.tril(lu, -1) + np.eye(lu.shape[0])
    return _relative(permuted, lower @ np.triu(lu))


# QR ---------------------------------------------------------------------------------------


def _geqrt_operands(b: int, rng: np.random.Generator) -> Operands:
    return (_tile(b, rng),)


def _geqrt_call(ops: Operands) -> Any:
    a = ops[0]
    return lapack.dgeqrt(_inner_block(a.shape[0]), a, overwrite_a=1)


def _gram_residual(before: np.ndarray, r: np.ndarray) -> float:
    """R^T R against A^T A: an upper-triangular R with the same Gram matrix is A's R factor."""
    return _relative(before, r.T @ r)


def _geqrt_residual(ops: Operands, out: Any) -> float:
    factored, _t, info = out
    return np.inf if info != 0 else _gram_residual(ops[0].T @ ops[0], np.triu(factored))


def _tpqrt_operands(b: int, rng: np.random.Generator) -> Operands:
    r = np.asfortranarray(np.triu(_tile(b, rng)) + 2.0 * np.eye(b))  # a geqrt's R
    return r, _tile(b, rng)


def _tpqrt_call(ops: Operands) -> Any:
    r, b = ops  # [R; B] = Q [R'; 0]: the tile below the diagonal annihilated
    return lapack.dtpqrt(0, _inner_block(r.shape[0]), r, b, overwrite_a=1, overwrite_b=1)


def _tpqrt_residual(ops: Operands, out: Any) -> float:
    r, b = ops
    factored, _v, _t, info = out
    return np.inf if info != 0 else _gram_residual(r.T @ r + b.T @ b, np.triu(factored))


def _ormqr_operands(b: int, rng: np.random.Generator) -> Operands:
    """V and T of a geqrt of C, and C itself: applying Q^T to C must give R."""
    c = _tile(b, rng)
    v, t, _info = lapack.dgeqrt(_inner_block(b), c)
    return np.asfortranarray(v), np.asfortranarray(t), c


def _ormqr_call(ops: Operands) -> Any:
    v, t, c = ops  # C <- Q^T C
    return lapack.dgemqrt(v, t, c, side="L", trans="T", overwrite_c=1)


def _ormqr_residual(ops: Operands, out: Any) -> float:
    _v, _t, c = ops
    applied, info = out
    if info != 0:
        return np.inf
    below = float(np.linalg.norm(np.tril(applied, -1)) / np.linalg.norm(c))
    return max(below, _gram_residual(c.T @ c, np.triu(applied)))


def _tpmqrt_operands(b: int, rng: np.random.Generator) -> Operands:
    """V and T of a tpqrt of [R; B], and R and B themselves: applying Q^T to them must
    annihilate B."""
    r, bottom = _tpqrt_operands(b, rng)
    _r, v, t, _info = lapack.dtpqrt(0, _inner_block(b), r, bottom)
    return np.asfortranarray(v), np.asfortranarray(t), r, bottom


def _tpmqrt_call(ops: Operands) -> Any:
    v, t, a, b = ops  # [A; B] <- Q^T [A; B]
    return lapack.dtpmqrt(0, v, t, a, b, side="L", trans="T", overwrite_a=1, overwrite_b=1)


def _tpmqrt_residual(ops: Operands, out: Any) -> float:
    _v, _t, a, b = ops
    top, bottom, info = out
    if info != 0:
        return np.inf
    annihilated = float(np.linalg.norm(bottom) / np.linalg.norm(b))
    return max(annihilated, _relative(a.T @ a + b.T @ b, top.T @ top + bottom.T @ bottom))


def _ops(*builders: Callable[[int, np.random.Generator], np.ndarray]) -> Callable[..., Operands]:
    return lambda b, rng: tuple(build(b, rng) for build in builders)


KERNELS: dict[str, Kernel] = {
    k.name: k
    for k in (
        Kernel("gemm", _ops(_tile, _tile, _tile), (2,), _gemm_call, _gemm_residual),
        Kernel("syrk", _ops(_tile, _spd), (1,), _syrk_call, _syrk_residual),
        Kernel("trsm", _ops(_lower, _tile), (1,), _trsm_call, _trsm_residual),
        Kernel("potrf", _ops(_spd), (0,), _potrf_call, _potrf_residual),
        Kernel("getrf", _ops(_dominant), (0,), _getrf_call, _getrf_residual),
        Kernel("geqrt", _geqrt_operands, (0,), _geqrt_call, _geqrt_residual),
        Kernel("tpqrt", _tpqrt_operands, (0, 1), _tpqrt_call, _tpqrt_residual),
        Kernel("ormqr", _ormqr_operands, (2,), _ormqr_call, _ormqr_residual),
        Kernel("tpmqrt", _tpmqrt_operands, (2, 3), _tpmqrt_call, _tpmqrt_residual),
    )
}

#: The kernels each tiled factorization is made of (trsm and gemm are shared).
FACTORIZATIONS: dict[str, tuple[str, ...]] = {
    "cholesky": ("potrf", "trsm", "syrk", "gemm"),
    "lu": ("getrf", "trsm", "gemm"),
    "qr": ("geqrt", "tpqrt", "ormqr", "tpmqrt"),
}
