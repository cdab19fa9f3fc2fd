"""The tiled factorizations' DAGs: task counts, data flow, and numerical equivalence of executing
their kernels (NumPy/SciPy) in random topological orders with the dense factorizations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from app.sim.tiled import (
    FACTORIZATIONS,
    KERNELS,
    Block,
    TiledDag,
    TileTask,
    kernel_flops,
    task_count,
    tiled_workload,
)

Tiles = dict[tuple[int, int], np.ndarray]


def random_topological_order(dag: TiledDag, rng: np.random.Generator) -> list[int]:
    """Kahn's algorithm picking uniformly among the ready tasks."""
    n = len(dag.tasks)
    pending = np.zeros(n, dtype=np.int64)
    children: list[list[int]] = [[] for _ in range(n)]
    for parent, child in dag.edges:
        pending[child] += 1
        children[parent].append(child)
    ready = [int(task) for task in np.flatnonzero(pending == 0)]
    order: list[int] = []
    while ready:
        task = ready.pop(int(rng.integers(len(ready))))
        order.append(task)
        for child in children[task]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    assert len(order) == n
    return order


def split(matrix: np.ndarray, tiles: int, b: int) -> Tiles:
    return {
        (i, j): matrix[i * b : (i + 1) * b, j * b : (j + 1) * b].copy()
        for i in range(tiles)
        for j in range(tiles)
    }


def join(tiles: Tiles, n: int, b: int) -> np.ndarray:
    return np.block([[tiles[i, j] for j in range(n)] for i in range(n)])


def run_cholesky(task: TileTask, a: Tiles, _: dict[tuple[int, int], np.ndarray]) -> None:
    k, m, n = task.k, task.m, task.n
    if task.kernel == "potrf":
        a[k, k] = scipy.linalg.cholesky(a[k, k], lower=True)
    elif task.kernel == "trsm":  # A_mk <- A_mk L_kk^-T
        a[m, k] = scipy.linalg.solve_triangular(a[k, k], a[m, k].T, lower=True).T
    elif task.kernel == "syrk":
        a[m, m] = a[m, m] - a[m, k] @ a[m, k].T
    else:
        a[m, n] = a[m, n] - a[m, k] @ a[n, k].T


def unpivoted_lu(matrix: np.ndarray) -> np.ndarray:
    """L and U packed in one matrix (L's unit diagonal implied), Doolittle without pivoting."""
    packed = matrix.copy()
    for j in range(packed.shape[0] - 1):
        packed[j + 1 :, j] /= packed[j, j]
        packed[j + 1 :, j + 1 :] -= np.outer(packed[j + 1 :, j], packed[j, j + 1 :])
    return packed


def run_lu(task: TileTask, a: Tiles, _: dict[tuple[int, int], np.ndarray]) -> None:
    k, m, n = task.k, task.m, task.n
    if task.kernel == "getrf":
        a[k, k] = unpivoted_lu(a[k, k])
    elif task.kernel == "trsm" and m == k:  # row panel: A_kn <- L_kk^-1 A_kn
        a[k, n] = scipy.linalg.solve_triangular(a[k, k], a[k, n], lower=True, unit_diagonal=True)
    elif task.kernel == "trsm":  # column panel: A_mk <- A_mk U_kk^-1
        a[m, k] = scipy.linalg.solve_triangular(a[k, k], a[m, k].T, trans="T", lower=False).T
    else:
        a[m, n] = a[m, n] - a[m, k] @ a[k, n]


def run_qr(task: TileTask, a: Tiles, q: dict[tuple[int, int], np.ndarray]) -> None:
    """Each kernel keeps its orthogonal factor Q explicitly (q[m, k]); TPQRT is the QR of the
    2b x b stack [R_kk; A_mk], TPMQRT applies its Q^T to the stack [A_kn; A_mn]."""
    k, m, n = task.k, task.m, task.n
    b = a[k, k].shape[0]
    if task.kernel == "geqrt":
        q[k, k], a[k, k] = np.linalg.qr(a[k, k], mode="complete")
    elif task.kernel == "ormqr":
        a[k, n] = q[k, k].T @ a[k, n]
    elif task.kernel == "tpqrt":
        q[m, k], r = np.linalg.qr(np.vstack([a[k, k], a[m, k]]), mode="complete")
        a[k, k], a[m, k] = r[:b], np.zeros((b, b))
    else:
        stacked = q[m, k].T @ np.vstack([a[k, n], a[m, n]])
        a[k, n], a[m, n] = stacked[:b], stacked[b:]


RUNNERS = {"cholesky": run_cholesky, "lu": run_lu, "qr": run_qr}


def execute(
    dag: TiledDag, matrix: np.ndarray, order: list[int]
) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
    a = split(matrix, dag.tiles, dag.tile_size)
    factors: dict[tuple[int, int], np.ndarray] = {}
    for task_id in order:
        RUNNERS[dag.factorization](dag.tasks[task_id], a, factors)
    return join(a, dag.tiles, dag.tile_size), factors


def q_transpose(dag: TiledDag, factors: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """Q^T of the tile QR: its reflectors applied in the algorithm's order (k, then m)."""
    b, n = dag.tile_size, dag.tiles
    qt = np.eye(n * b)
    for k in range(n):
        rows = [np.arange(k * b, (k + 1) * b)]
        qt[rows[0]] = factors[k, k].T @ qt[rows[0]]
        for m in range(k + 1, n):
            both = np.concatenate([rows[0], np.arange(m * b, (m + 1) * b)])
            qt[both] = factors[m, k].T @ qt[both]
    return qt


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("tiles", [1, 2, 3, 5, 8, 13])
def test_task_count_matches_the_closed_form(factorization: str, tiles: int) -> None:
    dag = TiledDag.build(factorization, tiles, 4)  # type: ignore[arg-type]
    per_step = [1 + 2 * (tiles - k - 1) + (tiles - k - 1) ** 2 for k in range(tiles)]
    closed = {
        "cholesky": tiles * (tiles + 1) * (tiles + 2) // 6,
        "lu": tiles * (tiles + 1) * (2 * tiles + 1) // 6,
        "qr": tiles * (tiles + 1) * (2 * tiles + 1) // 6,
    }[factorization]
    assert len(dag.tasks) == task_count(dag.factorization, tiles) == closed
    if factorization != "cholesky":
        assert closed == sum(per_step)
    if tiles >= 3:
        assert {task.kernel for task in dag.tasks} == set(KERNELS[factorization])


def test_cholesky_has_the_kernel_counts_of_buttari_et_al() -> None:
    n = 6
    kernels = [task.kernel for task in TiledDag.build("cholesky", n, 2).tasks]
    assert kernels.count("potrf") == n
    assert kernels.count("trsm") == kernels.count("syrk") == n * (n - 1) // 2
    assert kernels.count("gemm") == (n - 2) * (n - 1) * n // 6


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_every_input_comes_from_its_last_writer_in_program_order(factorization: str) -> None:
    dag = TiledDag.build(factorization, 6, 2)  # type: ignore[arg-type]
    parents: dict[int, set[int]] = {}
    for parent, child in dag.edges:
        assert parent < child  # program order is a topological order: acyclic
        parents.setdefault(child, set()).add(parent)
    last_writer: dict[Block, int] = {}
    for task_id, task in enumerate(dag.tasks):
        for block in {*task.reads, *task.writes}:
            if block in last_writer:
                assert last_writer[block] in parents[task_id]
        for block in task.writes:
            last_writer[block] = task_id


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_every_edge_moves_one_tile(factorization: str) -> None:
    dag = TiledDag.build(factorization, 5, 16)  # type: ignore[arg-type]
    workload = dag.workload()
    assert set(dag.edges.values()) == {1}
    np.testing.assert_allclose(workload.edge_data, 16 * 16 * 8 / 1e6)
    workload.topological_order  # noqa: B018 -- raises on a cycle


@pytest.mark.parametrize(
    ("factorization", "leading"), [("cholesky", 1 / 3), ("lu", 2 / 3), ("qr", 4 / 3)]
)
def test_flops_add_up_to_the_dense_factorization(factorization: str, leading: float) -> None:
    tiles, b = 40, 64
    dag = TiledDag.build(factorization, tiles, b)  # type: ignore[arg-type]
    dense = leading * (tiles * b) ** 3
    assert dag.flops.sum() == pytest.approx(dense, rel=3 / tiles)


def test_workload_carries_kernels_gflops_and_tiles() -> None:
    b = 256
    workload = tiled_workload("cholesky", 3, b)
    assert workload.category_names == ("potrf", "trsm", "syrk", "gemm")
    kernels = [workload.category_names[c] for c in workload.category]
    assert kernels[0] == "potrf" and kernels.count("gemm") == 1
    gemm = kernels.index("gemm")
    assert workload.size[gemm] == pytest.approx(kernel_flops("gemm", b) / 1e9)
    assert workload.memory[gemm] == pytest.approx(3 * b * b * 8 / 1e6)
    assert workload.memory[0] == pytest.approx(b * b * 8 / 1e6)
    assert np.all(workload.arrival == 0) and np.all(workload.intensity == 1.0)
    assert list(np.flatnonzero(np.diff(workload.parent_ptr) == 0)) == [0]  # one source


def spd(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, n))
    return x @ x.T + n * np.eye(n)


def column_dominant(rng: np.random.Generator, n: int) -> np.ndarray:
    """|a_jj| > sum of the column's other entries: partial pivoting never swaps rows."""
    x = rng.standard_normal((n, n))
    return x + np.diag(np.abs(x).sum(axis=0) + 1.0)


def check_cholesky(dag: TiledDag, matrix: np.ndarray, order: list[int]) -> None:
    result, _ = execute(dag, matrix, order)
    np.testing.assert_allclose(np.tril(result), np.linalg.cholesky(matrix), rtol=1e-10, atol=1e-10)


def check_lu(dag: TiledDag, matrix: np.ndarray, order: list[int]) -> None:
    result, _ = execute(dag, matrix, order)
    lower = np.tril(result, -1) + np.eye(len(matrix))
    upper = np.triu(result)
    p, l_ref, u_ref = scipy.linalg.lu(matrix)
    np.testing.assert_array_equal(p, np.eye(len(matrix)))  # so scipy's L, U are unpivoted
    np.testing.assert_allclose(lower, l_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(upper, u_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lower @ upper, matrix, rtol=1e-10, atol=1e-10)


def check_qr(dag: TiledDag, matrix: np.ndarray, order: list[int]) -> None:
    result, factors = execute(dag, matrix, order)
    r = np.triu(result)
    r_ref = np.linalg.qr(matrix, mode="r")
    signs = np.sign(np.diag(r)) * np.sign(np.diag(r_ref))
    scale = np.abs(matrix).max()
    np.testing.assert_allclose(signs[:, None] * r, r_ref, rtol=1e-10, atol=1e-10 * scale)
    qt = q_transpose(dag, factors)
    np.testing.assert_allclose(qt @ qt.T, np.eye(len(matrix)), atol=1e-12)
    np.testing.assert_allclose(qt @ matrix, r, atol=1e-10 * scale)


CHECKS = {
    "cholesky": (spd, check_cholesky),
    "lu": (column_dominant, check_lu),
    "qr": (lambda rng, n: rng.standard_normal((n, n)), check_qr),
}


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("order_seed", [0, 1, 2, 3])
def test_kernels_in_a_random_topological_order_give_the_dense_factor(
    factorization: str, order_seed: int
) -> None:
    tiles, b = 5, 3
    dag = TiledDag.build(factorization, tiles, b)  # type: ignore[arg-type]
    make, check = CHECKS[factorization]
    matrix = make(np.random.default_rng(42), tiles * b)
    order = random_topological_order(dag, np.random.default_rng(order_seed))
    assert order != list(range(len(dag.tasks)))  # not program order
    check(dag, matrix, order)


@settings(max_examples=30, deadline=None)
@given(
    factorization=st.sampled_from(FACTORIZATIONS),
    tiles=st.integers(1, 5),
    b=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_topological_order_gives_the_dense_factor(
    factorization: str, tiles: int, b: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dag = TiledDag.build(factorization, tiles, b)  # type: ignore[arg-type]
    make, check = CHECKS[factorization]
    check(dag, make(rng, tiles * b), random_topological_order(dag, rng))


def test_a_dropped_dependency_is_caught_by_some_order() -> None:
    """The equivalence test has teeth: without the SYRK -> POTRF edges, an order that runs
    POTRF before its diagonal tile is updated gives a wrong factor."""
    dag = TiledDag.build("cholesky", 3, 3)
    syrk_to_potrf = {
        edge: tiles
        for edge, tiles in dag.edges.items()
        if dag.tasks[edge[0]].kernel == "syrk" and dag.tasks[edge[1]].kernel == "potrf"
    }
    assert syrk_to_potrf
    broken = TiledDag(
        dag.factorization,
        dag.tiles,
        dag.tile_size,
        dag.tasks,
        {e: t for e, t in dag.edges.items() if e not in syrk_to_potrf},
    )
    matrix = spd(np.random.default_rng(0), 9)
    failures = 0
    for seed in range(20):
        try:
            check_cholesky(
                broken, matrix, random_topological_order(broken, np.random.default_rng(seed))
            )
        except (AssertionError, np.linalg.LinAlgError):
            failures += 1
    assert failures > 0


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="tiles >= 1"):
        TiledDag.build("lu", 0, 4)
    with pytest.raises(ValueError, match="unknown factorization"):
        TiledDag.build("svd", 2, 4)  # type: ignore[arg-type]
