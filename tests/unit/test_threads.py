import pytest
from threadpoolctl import threadpool_info

from app.runtime.threads import available_cores, limit_native_threads, native_threads
from app.settings import get_settings


@pytest.mark.parametrize(
    ("cores", "processes", "threads"),
    [(2, 2, 1), (16, 2, 8), (16, 4, 4), (16, 3, 5), (8, 1, 8), (2, 4, 1), (1, 1, 1), (4, 0, 4)],
)
def test_processes_times_threads_fit_the_cores_with_at_least_one_thread(
    cores: int, processes: int, threads: int
):
    assert native_threads(cores, processes) == threads
    assert native_threads(cores, processes) * max(processes, 1) <= max(cores, processes)


def test_an_explicit_thread_count_wins():
    assert native_threads(2, 2, override=3) == 3
    assert native_threads(16, 2, override=0) == 8


def test_the_limit_is_applied_to_the_loaded_openmp_and_blas_pools(monkeypatch):
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)

    monkeypatch.setattr(get_settings(), "native_threads", 1)
    limiter = limit_native_threads()
    try:
        pools = [p for p in threadpool_info() if p["user_api"] in ("openmp", "blas")]
        assert pools and all(p["num_threads"] == 1 for p in pools)
    finally:
        limiter.restore_original_limits()


def test_available_cores_is_at_least_one():
    assert available_cores() >= 1
