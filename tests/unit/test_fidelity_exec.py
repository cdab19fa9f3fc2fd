"""bench/fidelity_exec.py: a schedule of a tiled factorization really executed by one process per
core gives the right factor, in the given per-core order, each task after its parents."""

from __future__ import annotations

import numpy as np
import pytest

from app.sim.tiled import TiledDag
from bench.fidelity_exec import Executor, join_tiles, parents_of, split_tiles


def test_tiles_round_trip_through_the_shared_layout() -> None:
    matrix = np.arange(36.0).reshape(6, 6)
    store = np.empty((3, 3, 2, 2))
    split_tiles(matrix, 3, 2, store)
    assert np.array_equal(store[1, 2].T, matrix[2:4, 4:6])
    assert np.array_equal(join_tiles(store), matrix)


def test_two_processes_factor_a_tiled_cholesky_in_the_given_schedule() -> None:
    dag = TiledDag.build("cholesky", 3, 16)
    n = 3 * 16
    r = np.random.default_rng(0).uniform(-1.0, 1.0, (n, n))
    matrix = (r + r.T) / 2 + n * np.eye(n)
    orders = [[0, 1, 3, 5, 7], [2, 4, 6, 8, 9]]  # a valid interleaving of the 10 tasks

    with Executor(2) as executor:
        result, trace = executor.run(dag, orders, matrix)

    expected = np.linalg.cholesky(matrix)
    assert np.linalg.norm(np.tril(result) - expected) / np.linalg.norm(expected) < 1e-12
    for core, order in enumerate(orders):
        assert np.all(trace.core[order] == core)
        assert np.all(trace.start[order][1:] >= trace.end[order][:-1])  # in the given order
    for child, parents in enumerate(parents_of(dag)):
        for parent in parents:
            assert trace.start[child] >= trace.end[parent]
    assert np.all(trace.end >= trace.start) and trace.start.min() >= 0
    assert trace.makespan == pytest.approx(trace.end.max())
