"""Really execute a schedule of a tiled factorization: one process per core, each with one BLAS
thread, each running the tasks it was given in the given order, waiting for their inputs.

Why processes: SciPy's `blas`/`lapack` wrappers keep the GIL during the call (two threads doing
DGEMM got a 0.95x speed-up, issue 20), so threads would take turns. Each worker is a 'spawn'ed
process pinned to its own core (`os.sched_setaffinity`) with `threadpool_limits(1)`.

Data: the N x N tiles live in one `multiprocessing.shared_memory` block shaped (N, N, b, b); the
worker's view of tile (i, j) is `store[i, j].T`, a Fortran-ordered b x b array, so SciPy's
wrappers with `overwrite_*=1` work on it in place (no copy; checked after every call).

Synchronisation: a shared int8 flag per task, set after the task's kernel returned. A worker
spins on the flags of its next task's parents (a bare loop over a numpy element, no sleep: each
worker has a core to itself, so spinning costs nobody; the wake-up is the loop's period, well
under a microsecond, not an OS wake-up). On x86 (TSO) the tile data written by the kernel is
visible before the flag written after it.

Timing: every worker records `time.perf_counter()` (CLOCK_MONOTONIC, one clock for all
processes) after a common barrier, and before and after each task's kernel. The makespan is the
last task's end minus the earliest post-barrier time of the workers that had tasks.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from types import TracebackType
from typing import Any

import numpy as np
from scipy.linalg import blas, lapack

from app.cli.measure.contention import stop_workers
from app.sim.tiled import TiledDag

#: Seconds a worker waits for a parent (or at the barrier) before it gives up: an order that
#: contradicts the DAG would otherwise hang forever.
DEADLOCK_S = 120.0

Tiles = np.ndarray  # (N, N, b, b) float64; tile (i, j) as a matrix is tiles[i, j].T


class ExecutionFailed(RuntimeError):
    """A worker raised, timed out waiting, or a kernel reported an error (info != 0)."""


@dataclass(frozen=True)
class Trace:
    """One execution: per task its core, start and end (seconds since the common start)."""

    core: np.ndarray  # (tasks,) int64
    start: np.ndarray  # (tasks,) float64
    end: np.ndarray  # (tasks,) float64

    @property
    def makespan(self) -> float:
        return float(self.end.max()) if self.end.size else 0.0


# Kernels: in place on Fortran views of shared tiles --------------------------------------------


def _in_place(target: np.ndarray, out: Any) -> None:
    """The wrappers return their output; with overwrite it is `target` itself. Copy if not."""
    if out.ctypes.data != target.ctypes.data:
        target[...] = out


def _cholesky_task(tile: Callable[[int, int], np.ndarray], kernel: str, k: int, m: int, n: int):
    if kernel == "potrf":
        a = tile(k, k)
        out, info = lapack.dpotrf(a, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise ExecutionFailed(f"potrf({k}) info={info}")
        _in_place(a, out)
    elif kernel == "trsm":  # A_mk <- A_mk L_kk^-T
        b = tile(m, k)
        _in_place(b, blas.dtrsm(1.0, tile(k, k), b, side=1, lower=1, trans_a=1, overwrite_b=1))
    elif kernel == "syrk":  # A_mm <- A_mm - A_mk A_mk^T (lower)
        c = tile(m, m)
        _in_place(c, blas.dsyrk(-1.0, tile(m, k), beta=1.0, c=c, lower=1, overwrite_c=1))
    else:  # gemm: A_mn <- A_mn - A_mk A_nk^T
        c = tile(m, n)
        out = blas.dgemm(-1.0, tile(m, k), tile(n, k), beta=1.0, c=c, trans_b=1, overwrite_c=1)
        _in_place(c, out)


def _lu_task(tile: Callable[[int, int], np.ndarray], kernel: str, k: int, m: int, n: int):
    """LU without pivoting (app/sim/tiled.py): DGETRF on the diagonal tile must not pivot (the
    matrices here are diagonally dominant by columns, so partial pivoting keeps every row)."""
    if kernel == "getrf":
        a = tile(k, k)
        out, _pivots, info = lapack.dgetrf(a, overwrite_a=1)  # a pivot fails the final check
        if info != 0:
            raise ExecutionFailed(f"getrf({k}) info={info}")
        _in_place(a, out)
    elif kernel == "trsm" and m == k:  # row panel: A_kn <- L_kk^-1 A_kn (unit lower)
        b = tile(k, n)
        _in_place(b, blas.dtrsm(1.0, tile(k, k), b, side=0, lower=1, diag=1, overwrite_b=1))
    elif kernel == "trsm":  # column panel: A_mk <- A_mk U_kk^-1
        b = tile(m, k)
        _in_place(b, blas.dtrsm(1.0, tile(k, k), b, side=1, lower=0, overwrite_b=1))
    else:  # gemm: A_mn <- A_mn - A_mk A_kn
        c = tile(m, n)
        out = blas.dgemm(-1.0, tile(m, k), tile(k, n), beta=1.0, c=c, overwrite_c=1)
        _in_place(c, out)


def _nothing(tile: Callable[[int, int], np.ndarray], kernel: str, k: int, m: int, n: int):
    """The empty task: measures what the executor itself costs per task."""


RUNNERS = {"cholesky": _cholesky_task, "lu": _lu_task, "empty": _nothing}


# Worker ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What one worker runs: the shared blocks' names, the DAG as plain tuples, its order."""

    tiles_name: str
    control_name: str
    runner: str
    shape: tuple[int, int, int, int]
    tasks: tuple[tuple[str, int, int, int], ...]  # kernel, k, m, n
    parents: tuple[tuple[int, ...], ...]
    order: tuple[int, ...]


def _control_views(buffer: memoryview, tasks: int, cores: int) -> tuple[np.ndarray, ...]:
    """done (int8, tasks), start and end (float64, tasks), started (float64, cores)."""
    floats = np.ndarray((2 * tasks + cores,), np.float64, buffer)
    done = np.ndarray((tasks,), np.int8, buffer, offset=floats.nbytes)
    return done, floats[:tasks], floats[tasks : 2 * tasks], floats[2 * tasks :]


def _control_bytes(tasks: int, cores: int) -> int:
    return 8 * (2 * tasks + cores) + tasks


def _run_job(rank: int, cores: int, job: _Job, barrier: Barrier) -> None:
    tiles_shm = shared_memory.SharedMemory(job.tiles_name)
    control_shm = shared_memory.SharedMemory(job.control_name)
    try:
        _execute(rank, cores, job, barrier, tiles_shm.buf, control_shm.buf)
    finally:
        for shm in (tiles_shm, control_shm):
            with contextlib.suppress(BufferError):  # views kept alive by a traceback
                shm.close()


def _execute(
    rank: int, cores: int, job: _Job, barrier: Barrier, tiles: memoryview, control: memoryview
) -> None:
    """Run `job.order`, each task after its parents' flags are set; record the times."""
    store = np.ndarray(job.shape, np.float64, tiles)
    done, start, end, started = _control_views(control, len(job.tasks), cores)
    run = RUNNERS[job.runner]

    def tile(i: int, j: int) -> np.ndarray:
        return store[i, j].T

    clock = time.perf_counter
    barrier.wait(DEADLOCK_S)
    started[rank] = clock()
    deadline = started[rank] + DEADLOCK_S
    for task in job.order:
        for parent in job.parents[task]:
            while not done[parent]:
                if clock() > deadline:
                    raise ExecutionFailed(f"core {rank}: task {task} waited too long")
        start[task] = clock()
        run(tile, *job.tasks[task])
        end[task] = clock()
        done[task] = 1


def _serve(rank: int, cores: int, barrier: Barrier, conn: Connection) -> None:
    from threadpoolctl import threadpool_limits

    with contextlib.suppress(OSError, AttributeError):  # no affinity API: run unpinned
        os.sched_setaffinity(0, {rank % os.cpu_count()})  # type: ignore[operator]
    threadpool_limits(limits=1)
    while (job := conn.recv()) is not None:
        try:
            _run_job(rank, cores, job, barrier)
            conn.send(None)
        except Exception as exc:  # reported to the parent, which raises
            barrier.abort()
            conn.send(f"{type(exc).__name__}: {exc}")


# Parent ---------------------------------------------------------------------------------------


def split_tiles(matrix: np.ndarray, tiles: int, b: int, store: Tiles) -> None:
    """Write the n x n matrix into the (N, N, b, b) store (tile (i, j) = store[i, j].T)."""
    blocks = matrix.reshape(tiles, b, tiles, b).transpose(0, 2, 3, 1)
    store[...] = blocks


def join_tiles(store: Tiles) -> np.ndarray:
    """The n x n matrix the store holds."""
    tiles, _, b, _ = store.shape
    return store.transpose(0, 3, 1, 2).reshape(tiles * b, tiles * b).copy()


def parents_of(dag: TiledDag) -> tuple[tuple[int, ...], ...]:
    parents: list[list[int]] = [[] for _ in dag.tasks]
    for parent, child in dag.edges:
        parents[child].append(parent)
    return tuple(tuple(sorted(p)) for p in parents)


class Executor:
    """`cores` worker processes pinned to cores 0..cores-1, started once; `run` executes one
    schedule of one DAG on a matrix and returns the factored matrix and the trace."""

    def __init__(self, cores: int) -> None:
        context = mp.get_context("spawn")
        self.cores = cores
        self._barrier = context.Barrier(cores)
        self._conns: list[Connection] = []
        self._procs: list[mp.process.BaseProcess] = []
        for rank in range(cores):
            parent, child = context.Pipe()
            proc = context.Process(
                target=_serve,
                args=(rank, cores, self._barrier, child),
                daemon=True,
                name=f"fidelity-core-{rank}",
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    def run(
        self,
        dag: TiledDag,
        orders: Sequence[Sequence[int]],
        matrix: np.ndarray,
        runner: str | None = None,
    ) -> tuple[np.ndarray, Trace]:
        """Execute: core c runs `orders[c]` in that order (cores beyond len(orders) idle).
        `runner` is the factorization's kernels by default, "empty" for empty tasks."""
        n_tasks, tiles, b = len(dag.tasks), dag.tiles, dag.tile_size
        if sorted(t for order in orders for t in order) != list(range(n_tasks)):
            raise ValueError("the orders must hold every task exactly once")
        if len(orders) > self.cores:
            raise ValueError(f"{len(orders)} orders for {self.cores} cores")
        shape = (tiles, tiles, b, b)
        tiles_shm = shared_memory.SharedMemory(create=True, size=8 * tiles * tiles * b * b)
        control_shm = shared_memory.SharedMemory(
            create=True, size=_control_bytes(n_tasks, self.cores)
        )
        try:
            store = np.ndarray(shape, np.float64, tiles_shm.buf)
            split_tiles(matrix, tiles, b, store)
            done, start, end, started = _control_views(control_shm.buf, n_tasks, self.cores)
            done[:] = 0
            started[:] = np.inf
            tasks = tuple((t.kernel, t.k, t.m, t.n) for t in dag.tasks)
            parents = parents_of(dag)
            for rank, conn in enumerate(self._conns):
                order = tuple(orders[rank]) if rank < len(orders) else ()
                job = _Job(
                    tiles_shm.name,
                    control_shm.name,
                    runner or dag.factorization,
                    shape,
                    tasks,
                    parents,
                    order,
                )
                conn.send(job)
            try:
                errors = [conn.recv() for conn in self._conns]
            except (EOFError, OSError) as exc:
                raise ExecutionFailed("a worker process ended during the run") from exc
            if any(errors):
                self._barrier.reset()
                raise ExecutionFailed("; ".join(e for e in errors if e))
            core = np.empty(n_tasks, np.int64)
            for rank, order in enumerate(orders):
                core[list(order)] = rank
            busy = [rank for rank, order in enumerate(orders) if len(order)]
            zero = float(started[busy].min())
            trace = Trace(core, start - zero, end - zero)
            result = join_tiles(store)
            del store, done, start, end, started
            return result, trace
        finally:
            tiles_shm.close()
            tiles_shm.unlink()
            control_shm.close()
            control_shm.unlink()

    def close(self) -> None:
        stop_workers(self._conns, self._procs, 10)

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
