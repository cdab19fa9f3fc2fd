from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio

from app.ml import bootstrap
from app.ml.artifacts import digest
from app.ml.features import FEATURE_NAMES
from app.settings import get_settings
from app.sim.cluster import DEFAULT_GPU


@pytest.fixture(scope="module")
def trained() -> Any:
    """The recipe's estimator, trained once for the module (a few seconds)."""
    return bootstrap.train()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setattr(get_settings(), "model_cache_dir", folder)
    bootstrap.bootstrap_model.cache_clear()
    yield folder
    bootstrap.bootstrap_model.cache_clear()


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch, trained: Any) -> list[int]:
    """Counts trainings; each returns the module's trained estimator instead of training."""
    calls: list[int] = []

    def train() -> Any:
        calls.append(1)
        return trained

    monkeypatch.setattr(bootstrap, "train", train)
    return calls


def fresh_process_model() -> Any:
    """What a new process gets: bootstrap_model() without this process's memory of it."""
    bootstrap.bootstrap_model.cache_clear()
    return bootstrap.bootstrap_model()


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def features(rows: int = 500) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(rows, len(FEATURE_NAMES)))


def test_a_second_process_loads_the_cached_model_and_predicts_exactly_the_same(
    cache_dir: Path, trained: Any, trainings: list[int]
):
    first = fresh_process_model()
    second = fresh_process_model()
    assert len(trainings) == 1
    assert second.estimator is not trained  # read back from disk
    assert (second.estimator.predict(features()) == trained.predict(features())).all()
    assert first.version == second.version == bootstrap.BOOTSTRAP_VERSION
    assert_one_valid_file(cache_dir)


def assert_one_valid_file(folder: Path) -> Path:
    [path] = cached_files(folder)
    assert path.name == f"bootstrap-{bootstrap.cache_key()}.{digest(path.read_bytes())}.skops"
    return path


def test_a_tampered_cache_file_is_refused_and_rebuilt(cache_dir: Path, trainings: list[int]):
    fresh_process_model()
    path = assert_one_valid_file(cache_dir)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    fresh_process_model()
    assert len(trainings) == 2
    assert_one_valid_file(cache_dir)
    fresh_process_model()
    assert len(trainings) == 2


def test_a_truncated_cache_file_is_refused_and_rebuilt(cache_dir: Path, trainings: list[int]):
    fresh_process_model()
    path = assert_one_valid_file(cache_dir)
    path.write_bytes(path.read_bytes()[:1000])
    fresh_process_model()
    assert len(trainings) == 2
    assert_one_valid_file(cache_dir)


class Foreign:
    """Not a type an artifact may contain."""


def test_a_file_with_foreign_types_is_not_loaded_even_when_its_digest_matches(
    cache_dir: Path, trainings: list[int]
):
    data = sio.dumps({"payload": Foreign()})
    cache_dir.mkdir()
    planted = cache_dir / f"bootstrap-{bootstrap.cache_key()}.{digest(data)}.skops"
    planted.write_bytes(data)
    model = fresh_process_model()
    assert len(trainings) == 1 and not planted.exists()
    assert hasattr(model.estimator, "predict")


@pytest.mark.parametrize(
    ("name", "changed"),
    [
        ("BOOTSTRAP_VERSION", "bootstrap-2"),
        ("FEATURE_NAMES", (*FEATURE_NAMES, "another_feature")),
        ("SAMPLES_PER_DEVICE", 999),
        ("ESTIMATOR_PARAMS", {**bootstrap.ESTIMATOR_PARAMS, "max_iter": 300}),
        # Not a constant of the recipe: a change in what it computes (the cost model's input).
        ("DEFAULT_GPU", replace(DEFAULT_GPU, speed=DEFAULT_GPU.speed * 2)),
    ],
)
def test_a_changed_recipe_does_not_reuse_the_old_file(
    cache_dir: Path, trainings: list[int], monkeypatch: pytest.MonkeyPatch, name: str, changed: Any
):
    fresh_process_model()
    old_key = bootstrap.cache_key()
    monkeypatch.setattr(bootstrap, name, changed)
    assert bootstrap.cache_key() != old_key
    fresh_process_model()
    assert len(trainings) == 2
    assert len(cached_files(cache_dir)) == 2


def test_the_key_is_the_same_in_every_call():
    assert bootstrap.cache_key() == bootstrap.cache_key()


def test_an_unwritable_cache_folder_means_training_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trainings: list[int]
):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    monkeypatch.setattr(get_settings(), "model_cache_dir", not_a_folder / "cache")
    try:
        first, second = fresh_process_model(), fresh_process_model()
    finally:
        bootstrap.bootstrap_model.cache_clear()
    assert first.version == second.version == bootstrap.BOOTSTRAP_VERSION
    assert len(trainings) == 2
    assert list(tmp_path.iterdir()) == [not_a_folder]


def test_the_cache_folder_follows_the_data_folder_unless_set(tmp_path: Path):
    from app.settings import Settings

    assert Settings(data_dir=tmp_path).cache_dir == tmp_path / "cache"
    assert Settings(data_dir=tmp_path, model_cache_dir=tmp_path / "c").cache_dir == tmp_path / "c"


def test_no_temporary_file_is_left_behind(cache_dir: Path, trainings: list[int]):
    fresh_process_model()
    assert [p.suffix for p in cached_files(cache_dir)] == [".skops"]


def test_processes_writing_at_once_all_leave_a_complete_file(cache_dir: Path, trained: Any):
    from concurrent.futures import ThreadPoolExecutor

    from app.ml import model_cache

    with ThreadPoolExecutor(4) as pool:
        written = list(
            pool.map(lambda _: model_cache.store(cache_dir, "bootstrap", "k", trained), range(4))
        )
    assert all(path is not None and path.exists() for path in written)
    assert all(path.suffix == ".skops" for path in cached_files(cache_dir))
    loaded = model_cache.load(cache_dir, "bootstrap", "k")
    assert (loaded.predict(features()) == trained.predict(features())).all()
