import numpy as np
import pytest

from app.ml.features import FEATURE_NAMES, device_features, pair_features, task_features
from app.sim.cluster import DEFAULT_GPU, Cluster
from app.sim.workload import Workload


def test_task_features_are_logs_of_the_task_and_of_what_its_parents_send():
    w = Workload.from_edges(
        size=np.array([8.0, 2.0, 1.0]), intensity=np.array([0.1, 0.5, 0.9]),
        memory=np.array([0.0, 99.0, 3.0]), arrival=np.zeros(3),
        edges=[(0, 2), (1, 2)], edge_data=np.array([4.0, 6.0]),
    )  # fmt: skip
    x = task_features(w)
    assert x.shape == (3, 5)
    assert x[:, 0] == pytest.approx(np.log([8.0, 2.0, 1.0]))
    assert x[:, 1].tolist() == [0.1, 0.5, 0.9]
    assert x[:, 2] == pytest.approx(np.log1p([0.0, 99.0, 3.0]))
    assert x[:, 3] == pytest.approx(np.log1p([0.0, 0.0, 10.0]))


def test_the_features_of_some_tasks_are_those_rows_of_all_tasks_features_bit_for_bit():
    rng = np.random.default_rng(7)
    n = 500
    edges = sorted({(int(a), int(b)) for a, b in rng.integers(0, n, (2000, 2)) if a < b})
    w = Workload.from_edges(
        size=rng.lognormal(0, 2, n), intensity=rng.random(n), memory=rng.lognormal(2, 1, n),
        arrival=np.zeros(n), edges=edges, edge_data=rng.lognormal(1, 1, len(edges)),
    ).with_categories([f"k{i % 7}" for i in range(n)])  # fmt: skip
    tasks = np.sort(rng.choice(n, 120, replace=False))
    assert task_features(w, tasks).tobytes() == task_features(w)[tasks].tobytes()


def test_a_category_has_the_same_code_in_every_workload_and_others_differ():
    def codes(labels: list[str]) -> dict[str, float]:
        n = len(labels)
        w = Workload(size=np.ones(n), intensity=np.zeros(n), memory=np.ones(n),
                     arrival=np.zeros(n)).with_categories(labels)  # fmt: skip
        return dict(zip(labels, task_features(w)[:, 4].tolist(), strict=True))

    first, second = codes(["gemm", "fft", "gemm"]), codes(["stencil", "gemm"])
    assert first["gemm"] == second["gemm"]
    assert len({first["gemm"], first["fft"], second["stencil"]}) == 3
    assert all(0 <= code < 1 for code in [*first.values(), *second.values()])


def test_device_features_describe_kind_speeds_and_link():
    d = device_features(Cluster.homogeneous_kinds(1, 1))
    assert d.shape == (2, 5)
    assert d[0, 0] == 0 and d[1, 0] == 1
    assert d[1, 1] == pytest.approx(np.log(DEFAULT_GPU.speed))
    assert d[0, 3] == pytest.approx(np.log(1e9))  # host memory: the cap, not infinity
    assert np.isfinite(d).all()


def test_pairs_repeat_the_device_for_every_task():
    w = Workload(size=np.ones(4), intensity=np.zeros(4), memory=np.ones(4), arrival=np.zeros(4))
    pairs = pair_features(task_features(w), device_features(Cluster.homogeneous_kinds(0, 1))[0])
    assert pairs.shape == (4, len(FEATURE_NAMES))
    assert (pairs[:, 4:] == pairs[0, 4:]).all()
