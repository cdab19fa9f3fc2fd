"""Tiled dense linear algebra as task DAGs: right-looking tile Cholesky, LU and QR.

An n x n matrix is cut into N x N tiles of b x b doubles (n = N b); each task runs one kernel on a
few tiles, and the dependencies are the data flow between those tiles. These are the DAGs every
runtime paper measures (PLASMA, StarPU/Chameleon, PaRSEC). Sources, followed loop for loop:

- Cholesky (lower) and QR: Buttari, Langou, Kurzak & Dongarra, "A class of parallel tiled linear
  algebra algorithms for multicore architectures", Parallel Computing 35(1), 2009: their tile
  Cholesky and tile QR. QR's kernels carry LAPACK 3.4's names: their DGEQRT, DLARFB, DTSQRT and
  DSSRFB are GEQRT, ORMQR (the update of the row of tiles right of the diagonal), TPQRT (TSQRT:
  QR of the triangle R_kk stacked on a square tile) and TPMQRT (TSMQR: its update of two tiles).
- LU without pivoting: GETRF on the diagonal tile, TRSM on the row and column panels, GEMM on
  the trailing matrix (the structure of the same paper's tile LU without its incremental
  pivoting, whose kernels differ; stable for diagonally dominant matrices).

Task counts: Cholesky N(N+1)(N+2)/6; LU and QR sum_k 1 + 2(N-k-1) + (N-k-1)^2 = N(N+1)(2N+1)/6.

**Data flow.** Each task declares the blocks it reads and writes. Walking the tasks in program
order and tracking each block's last writer and its readers since, a task depends on the last
writer of every block it reads or writes (read-after-write, write-after-write) and on the readers
of every block it writes (write-after-read). QR's diagonal tile is two blocks after GEQRT: its
upper triangle R (rewritten by each TPQRT of the column) and its reflectors V with their T factor
(read by ORMQR): one block for the whole tile would add false write-after-read edges from every
ORMQR(k, n) to TPQRT(k+1, k), which Chameleon avoids with a copy of the diagonal tile. The T
factor of a TPQRT travels with its tile of reflectors. An edge carries the blocks its child reads
that its parent wrote last, each counted as one tile (b^2 * 8 bytes); a pure ordering edge
carries none (the three algorithms have none: every edge moves exactly one tile).

**Flops** (double precision): gemm 2b^3, syrk b^2(b+1), trsm b^3 and potrf b^3/3 + b^2/2 + b/6 are
exact (LAPACK Working Note 41, Blackford & Dongarra); getrf 2b^3/3, geqrt 4b^3/3, ormqr 2b^3,
tpqrt 2b^3 and tpmqrt 4b^3 are leading terms, the counts Buttari et al. give for their kernels;
the extra work of the inner blocking that TPQRT/TPMQRT implementations do (their `ib`) is not
counted. Summed over a DAG they approach the dense counts n^3/3, 2n^3/3 and 4n^3/3.

**As a Workload.** `size` is a task's flops in GFLOP, `memory` the MB of the distinct tiles it
touches, `edge_data` MB per edge, `category` its kernel name, every arrival 0 (a static DAG).
`intensity` is 1.0 for every task: a guess of the cost model's data-parallel share, not a
measurement. Dense kernels are data parallel, but a V100 runs DPOTRF at ~1/6 of DGEMM's flop
rate at tile 1024 (McSweeney, Walton & Zounon, ICCS 2020); the truth (measured.py: each
kernel's measured times in the cluster's kernel profile) is what carries such differences. Each
task's tile size is the Workload's `tile_size`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from app.sim.workload import Workload

Factorization = Literal["cholesky", "lu", "qr"]
FACTORIZATIONS: tuple[Factorization, ...] = ("cholesky", "lu", "qr")

#: Kernels of each factorization, in the order of their categories in the Workload.
KERNELS: dict[str, tuple[str, ...]] = {
    "cholesky": ("potrf", "trsm", "syrk", "gemm"),
    "lu": ("getrf", "trsm", "gemm"),
    "qr": ("geqrt", "ormqr", "tpqrt", "tpmqrt"),
}

BYTES_PER_ELEMENT = 8  # double precision


class Block(NamedTuple):
    """Data a task reads or writes: the tile at (row, col), or a part of it ("r": the upper
    triangle of a QR diagonal tile after GEQRT, "v": its reflectors with their T factor)."""

    row: int
    col: int
    part: str = "tile"


@dataclass(frozen=True)
class TileTask:
    """One kernel call at step k on the tile in row m, column n (the tile it updates)."""

    kernel: str
    k: int
    m: int
    n: int
    reads: tuple[Block, ...]
    writes: tuple[Block, ...]


#: Floating-point operations of one kernel on b x b tiles, as a function of b (module docstring).
_FLOPS: dict[str, Callable[[Any], Any]] = {
    "gemm": lambda x: 2 * x**3,
    "syrk": lambda x: x**2 * (x + 1),
    "trsm": lambda x: x**3,
    "potrf": lambda x: x**3 / 3 + x**2 / 2 + x / 6,
    "getrf": lambda x: 2 * x**3 / 3,
    "geqrt": lambda x: 4 * x**3 / 3,
    "ormqr": lambda x: 2 * x**3,
    "tpqrt": lambda x: 2 * x**3,
    "tpmqrt": lambda x: 4 * x**3,
}


def kernel_flops(kernel: str, b: int) -> float:
    """Floating-point operations of one kernel on b x b tiles (see the module docstring)."""
    return float(_FLOPS[kernel](float(b)))


def kernel_flops_of(kernel: str, b: np.ndarray) -> np.ndarray:
    """`kernel_flops` for an array of tile sizes; float64, the shape of `b`."""
    return np.asarray(_FLOPS[kernel](np.asarray(b, dtype=np.float64)), dtype=np.float64)


def task_count(factorization: Factorization, tiles: int) -> int:
    """Tasks of the DAG on N x N tiles (closed forms of the module docstring)."""
    n = tiles
    if factorization == "cholesky":
        return n * (n + 1) * (n + 2) // 6
    return n * (n + 1) * (2 * n + 1) // 6


def _cholesky(n: int) -> Iterator[TileTask]:
    for k in range(n):
        yield TileTask("potrf", k, k, k, (Block(k, k),), (Block(k, k),))
        for m in range(k + 1, n):
            yield TileTask("trsm", k, m, k, (Block(k, k), Block(m, k)), (Block(m, k),))
        for m in range(k + 1, n):
            yield TileTask("syrk", k, m, m, (Block(m, k), Block(m, m)), (Block(m, m),))
            for j in range(k + 1, m):
                reads = (Block(m, k), Block(j, k), Block(m, j))
                yield TileTask("gemm", k, m, j, reads, (Block(m, j),))


def _lu(n: int) -> Iterator[TileTask]:
    for k in range(n):
        yield TileTask("getrf", k, k, k, (Block(k, k),), (Block(k, k),))
        for j in range(k + 1, n):
            yield TileTask("trsm", k, k, j, (Block(k, k), Block(k, j)), (Block(k, j),))
        for m in range(k + 1, n):
            yield TileTask("trsm", k, m, k, (Block(k, k), Block(m, k)), (Block(m, k),))
        for m in range(k + 1, n):
            for j in range(k + 1, n):
                reads = (Block(m, k), Block(k, j), Block(m, j))
                yield TileTask("gemm", k, m, j, reads, (Block(m, j),))


def _qr(n: int) -> Iterator[TileTask]:
    for k in range(n):
        r, v = Block(k, k, "r"), Block(k, k, "v")
        yield TileTask("geqrt", k, k, k, (Block(k, k),), (r, v))
        for j in range(k + 1, n):
            yield TileTask("ormqr", k, k, j, (v, Block(k, j)), (Block(k, j),))
        for m in range(k + 1, n):
            yield TileTask("tpqrt", k, m, k, (r, Block(m, k)), (r, Block(m, k)))
            for j in range(k + 1, n):
                pair = (Block(k, j), Block(m, j))
                yield TileTask("tpmqrt", k, m, j, (Block(m, k), *pair), pair)


_PROGRAMS: dict[str, Callable[[int], Iterator[TileTask]]] = {
    "cholesky": _cholesky,
    "lu": _lu,
    "qr": _qr,
}


def data_flow(tasks: tuple[TileTask, ...]) -> dict[tuple[int, int], int]:
    """The DAG of tasks in program order: {(parent, child): tiles the child reads that the parent
    wrote last} (0 for an edge that only orders a write after a read)."""
    edges: dict[tuple[int, int], int] = {}
    last_writer: dict[Block, int] = {}
    readers: dict[Block, list[int]] = {}
    for task_id, task in enumerate(tasks):
        for block in task.reads:
            writer = last_writer.get(block)
            if writer is not None:
                edges[writer, task_id] = edges.get((writer, task_id), 0) + 1
        for block in task.writes:
            writer = last_writer.get(block)
            earlier = readers.get(block, []) + ([] if writer is None else [writer])
            for parent in earlier:
                if parent != task_id:
                    edges.setdefault((parent, task_id), 0)
        for block in task.reads:
            readers.setdefault(block, []).append(task_id)
        for block in task.writes:
            last_writer[block] = task_id
            readers[block] = []
    return edges


@dataclass(frozen=True)
class TiledDag:
    """A tile factorization's tasks (program order) and their data-flow edges."""

    factorization: Factorization
    tiles: int
    tile_size: int
    tasks: tuple[TileTask, ...]
    edges: dict[tuple[int, int], int]

    @classmethod
    def build(cls, factorization: Factorization, tiles: int, tile_size: int) -> TiledDag:
        if factorization not in _PROGRAMS:
            raise ValueError(f"unknown factorization {factorization!r}; one of {FACTORIZATIONS}")
        if tiles < 1 or tile_size < 1:
            raise ValueError("a tiled factorization needs tiles >= 1 and tile_size >= 1")
        tasks = tuple(_PROGRAMS[factorization](tiles))
        return cls(factorization, tiles, tile_size, tasks, data_flow(tasks))

    @property
    def tile_mb(self) -> float:
        """MB of one b x b tile of doubles."""
        return self.tile_size**2 * BYTES_PER_ELEMENT / 1e6

    @property
    def flops(self) -> np.ndarray:
        """Floating-point operations of each task, shape (num_tasks,)."""
        per_kernel = {
            name: kernel_flops(name, self.tile_size) for name in KERNELS[self.factorization]
        }
        return np.array([per_kernel[task.kernel] for task in self.tasks], dtype=np.float64)

    def workload(self) -> Workload:
        """The DAG as the simulator's Workload (units and choices in the module docstring)."""
        names = KERNELS[self.factorization]
        code = {name: index for index, name in enumerate(names)}
        n = len(self.tasks)
        touched = [len({(b.row, b.col) for b in (*t.reads, *t.writes)}) for t in self.tasks]
        pairs = np.array(list(self.edges), dtype=np.int64).reshape(-1, 2)
        carried = np.array(list(self.edges.values()), dtype=np.float64)
        return Workload.from_edges(
            size=self.flops / 1e9,
            intensity=np.ones(n),
            memory=np.array(touched, dtype=np.float64) * self.tile_mb,
            arrival=np.zeros(n),
            edges=pairs,
            edge_data=carried * self.tile_mb,
            category=np.array([code[task.kernel] for task in self.tasks], dtype=np.int32),
            category_names=names,
            tile_size=np.full(n, self.tile_size, dtype=np.int64),
        )


def tiled_workload(factorization: Factorization, tiles: int, tile_size: int) -> Workload:
    """The Workload of a tile factorization on `tiles` x `tiles` tiles of `tile_size`^2 doubles."""
    return TiledDag.build(factorization, tiles, tile_size).workload()
