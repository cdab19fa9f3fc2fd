import numpy as np
import pytest

from app.sim.workload import SyntheticParams, Workload, synthetic_workload


def generate(n: int = 20_000, seed: int = 1, **overrides: float) -> Workload:
    return synthetic_workload(
        SyntheticParams(num_tasks=n, **overrides), np.random.default_rng(seed)
    )


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    a, b, c = generate(seed=3), generate(seed=3), generate(seed=4)
    for field in ("size", "intensity", "memory", "arrival"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
        assert not np.array_equal(getattr(a, field), getattr(c, field))


def test_sizes_are_heavy_tailed_and_bounded():
    w = generate(min_size=1.0)
    assert w.size.min() >= 1.0
    assert w.size.max() <= SyntheticParams(num_tasks=1).max_size
    # A Pareto tail: the largest tasks are far above the median (an exponential would give ~10x).
    assert np.percentile(w.size, 99.9) / np.median(w.size) > 30


def test_intensity_is_bimodal():
    w = generate(gpu_friendly_share=0.5)
    low, middle, high = (
        (w.intensity < 0.3).mean(),
        ((w.intensity > 0.4) & (w.intensity < 0.6)).mean(),
        (w.intensity > 0.7).mean(),
    )
    assert low > 0.35 and high > 0.35
    assert middle < 0.1


def test_memory_grows_with_size():
    w = generate()
    rank_size = np.argsort(np.argsort(w.size))
    rank_memory = np.argsort(np.argsort(w.memory))
    assert np.corrcoef(rank_size, rank_memory)[0, 1] > 0.6


def test_arrivals_are_a_poisson_process_at_the_requested_rate():
    w = generate(n=50_000, arrival_rate=200.0)
    gaps = np.diff(w.arrival)
    assert np.all(gaps >= 0)
    assert gaps.mean() == pytest.approx(1 / 200.0, rel=0.03)
    # Exponential gaps: coefficient of variation 1.
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)


def test_invalid_arrays_are_rejected():
    ones = np.ones(3)
    with pytest.raises(ValueError, match="intensity"):
        Workload(size=ones, intensity=ones * 2, memory=ones, arrival=ones)
    with pytest.raises(ValueError, match="shape"):
        Workload(size=ones, intensity=ones[:2], memory=ones, arrival=ones)
    with pytest.raises(ValueError, match="NaN"):
        Workload(size=np.array([1.0, np.nan, 1.0]), intensity=ones / 2, memory=ones, arrival=ones)
