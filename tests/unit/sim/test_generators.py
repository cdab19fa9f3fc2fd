import numpy as np
import pytest

from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU
from app.sim.generators import (
    LayeredDagParams,
    SyntheticParams,
    TaskMix,
    layered_dag,
    synthetic_workload,
)


def generate(n: int = 20_000, seed: int = 1, **kw):
    return synthetic_workload(SyntheticParams(num_tasks=n, **kw), np.random.default_rng(seed))


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    a, b, c = generate(seed=3), generate(seed=3), generate(seed=4)
    for field in ("size", "intensity", "memory", "arrival"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
        assert not np.array_equal(getattr(a, field), getattr(c, field))


def test_sizes_are_heavy_tailed_and_bounded():
    w = generate()
    assert w.size.min() >= 1.0 and w.size.max() <= TaskMix().max_size
    # A Pareto tail: the largest tasks are far above the median (an exponential gives ~10x).
    assert np.percentile(w.size, 99.9) / np.median(w.size) > 30


def test_intensity_is_bimodal():
    w = generate()
    low, high = (w.intensity < 0.3).mean(), (w.intensity > 0.7).mean()
    assert low > 0.35 and high > 0.35
    assert ((w.intensity > 0.4) & (w.intensity < 0.6)).mean() < 0.1


def test_memory_grows_with_size():
    w = generate()
    rank_size, rank_memory = np.argsort(np.argsort(w.size)), np.argsort(np.argsort(w.memory))
    assert np.corrcoef(rank_size, rank_memory)[0, 1] > 0.6


def test_arrivals_are_a_poisson_process_at_the_requested_rate():
    gaps = np.diff(generate(n=50_000, arrival_rate=200.0).arrival)
    assert np.all(gaps >= 0)
    assert gaps.mean() == pytest.approx(1 / 200.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)  # exponential: CV 1


def test_synthetic_dependencies_look_back_a_bounded_number_of_tasks():
    w = generate(n=5000, dependency_probability=0.6, max_parents=3, lookback=10)
    child = np.repeat(np.arange(w.num_tasks), np.diff(w.parent_ptr))
    distance = child - w.parent_idx
    assert w.num_edges > 0.5 * 5000
    assert distance.min() >= 1 and distance.max() <= 10
    assert np.diff(w.parent_ptr).max() <= 3
    assert np.allclose(w.edge_data, w.memory[w.parent_idx] * 0.5)


def test_layered_dag_levels_jumps_and_ccr():
    params = LayeredDagParams(num_tasks=400, width=0.5, density=0.5, jump=2, ccr=2.0)
    w = layered_dag(params, np.random.default_rng(7))
    assert w.num_tasks == 400 and np.all(w.arrival == 0)
    order = w.topological_order  # acyclic by construction
    assert order.size == 400
    # Roots are exactly the first level: about 400 ** 0.5 = 20 tasks.
    roots = np.flatnonzero(np.diff(w.parent_ptr) == 0)
    assert 5 <= roots.size <= 40
    # Every edge carries ccr x its parent's reference time on a default GPU link.
    reference = w.size[w.parent_idx] / DEFAULT_CPU.speed
    assert np.allclose(w.edge_data / DEFAULT_GPU.bandwidth, 2.0 * reference)


def test_layered_dag_width_controls_parallelism():
    narrow = layered_dag(LayeredDagParams(num_tasks=300, width=0.2), np.random.default_rng(1))
    wide = layered_dag(LayeredDagParams(num_tasks=300, width=0.9), np.random.default_rng(1))
    roots = [int((np.diff(w.parent_ptr) == 0).sum()) for w in (narrow, wide)]
    assert roots[0] < roots[1]
