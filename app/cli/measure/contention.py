"""All cores busy at once, as StarPU calibrates: one process per core (SciPy's wrappers hold the
GIL, so threads would take turns), each limited to one BLAS thread, all running the same kernel
on their own tiles, released together by a barrier. Cores share caches and memory bandwidth, so
a kernel is slower this way than alone; a profile records both.

The processes are started once ('spawn': a clean interpreter, no BLAS thread pool or progress-bar
thread inherited from the parent) and serve one cell after another.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from types import TracebackType

import numpy as np
from threadpoolctl import threadpool_limits

from app.cli.measure.kernels import KERNELS
from app.cli.measure.timing import operands_for, time_calls

#: Seconds a process waits at the barrier for the others before the cell fails (a process that
#: died would otherwise hang the measurement).
BARRIER_TIMEOUT_S = 120.0


def stop_workers(
    conns: Sequence[Connection], procs: Sequence[BaseProcess], timeout_s: float
) -> None:
    """Tell each worker process to stop (None on its pipe), close the pipes, and wait up to
    `timeout_s` for each before terminating it."""
    for conn in conns:
        with contextlib.suppress(OSError):  # that process is gone already
            conn.send(None)
        conn.close()
    for proc in procs:
        proc.join(timeout_s)
        if proc.is_alive():
            proc.terminate()


class BusyCoresFailed(RuntimeError):
    """A process keeping a core busy ended before answering (killed, out of memory)."""


Cell = tuple[str, int, int, int, int]  # kernel, tile size b, repeats, warm-up calls, pool bytes


def _serve(rank: int, seed: int, barrier: Barrier, conn: Connection) -> None:
    """One busy core: for each cell received, build this process's own operands, wait for the
    others, then time the calls (warm-up after the barrier, so everyone is already busy when
    timing starts) and send back the per-call seconds. Operands are cold (a pool of
    `pool bytes`, each process its own) or warm (pool bytes 0), as alone. Stops on None."""
    threadpool_limits(limits=1)
    rng = np.random.default_rng([seed, rank])
    while (cell := conn.recv()) is not None:
        name, size, repeats, warmup, pool_bytes = cell
        kernel = KERNELS[name]
        operands = operands_for(kernel, kernel.operands(size, rng), pool_bytes)
        barrier.wait(BARRIER_TIMEOUT_S)
        conn.send(time_calls(kernel, operands, repeats, warmup))
        del operands  # a cold pool is twice the last-level cache: free it before the next


class BusyCores:
    """`processes` worker processes, one per core; `run(...)` times one cell on all of them at
    once and returns every process's per-call seconds together."""

    def __init__(self, processes: int, seed: int = 0) -> None:
        context = mp.get_context("spawn")
        barrier = context.Barrier(processes)
        self._barrier = barrier  # alive until the children have unpickled it
        self._conns: list[Connection] = []
        self._procs: list[mp.process.BaseProcess] = []
        for rank in range(processes):
            parent, child = context.Pipe()
            proc = context.Process(
                target=_serve, args=(rank, seed, barrier, child), daemon=True, name=f"busy-{rank}"
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    @property
    def processes(self) -> int:
        return len(self._procs)

    def run(
        self, kernel: str, size: int, repeats: int, warmup: int, pool_bytes: int = 0
    ) -> np.ndarray:
        """Per-call seconds of `repeats` calls of `kernel` on b = `size` tiles in each process
        (processes x repeats values), every process running at the same time, on cold operands
        from a pool of `pool_bytes` per process (0: warm operands)."""
        cell: Cell = (kernel, size, repeats, warmup, pool_bytes)
        for conn in self._conns:
            conn.send(cell)
        try:
            return np.concatenate([conn.recv() for conn in self._conns])
        except (EOFError, OSError) as exc:
            raise BusyCoresFailed(f"a busy-core process ended during {kernel} b={size}") from exc

    def close(self) -> None:
        stop_workers(self._conns, self._procs, BARRIER_TIMEOUT_S)

    def __enter__(self) -> BusyCores:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
