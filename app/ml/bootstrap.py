"""The model `learned` uses before the registry has one: trained on a generated profiling set.

It stands in for "measure a few hundred kernels on each device": tasks spread over a wide range
of sizes and data volumes, devices drawn around the defaults (speeds x1/4..x4, links x1/4..x4,
latencies x1/10..x10), times from the cost model with 10 % log-normal measurement noise.
Deterministic (fixed seeds). Training takes 2-3 s on an idle 2-core VM (far longer beside other
busy processes), so the model is trained once per machine and cached on disk
(`app.ml.model_cache`, in `Settings.cache_dir`): later processes load it in about 0.15 s. The
cache key changes with anything the model depends on (`cache_key`), so a changed recipe, feature
set, cost model or scikit-learn never reuses a stale file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from functools import lru_cache

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor

from app.ml import model_cache
from app.ml.features import FEATURE_NAMES, device_features, pair_features, target, task_features
from app.ml.performance_model import SklearnPerformanceModel
from app.settings import get_settings
from app.sim import costs
from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU, Cluster, DeviceKind, DeviceModel
from app.sim.generators import TaskMix
from app.sim.workload import Workload

BOOTSTRAP_VERSION = "bootstrap-1"
SAMPLES_PER_DEVICE = 1000
DEVICES_PER_KIND = 40
MEASUREMENT_NOISE = 0.10
SEED = 20021
ESTIMATOR_PARAMS = {"max_iter": 400, "learning_rate": 0.1, "random_state": SEED}
CACHE_NAME = "bootstrap"


def profiling_set(
    rng: np.random.Generator, devices_per_kind: int = DEVICES_PER_KIND
) -> tuple[np.ndarray, np.ndarray]:
    """(features, targets: ln seconds per GFLOP) for generated tasks on generated devices."""
    rows, targets = [], []
    for kind, base in ((DeviceKind.CPU, DEFAULT_CPU), (DeviceKind.GPU, DEFAULT_GPU)):
        for _ in range(devices_per_kind):
            model = _perturbed(base, rng)
            cluster = Cluster.of([(kind, model)])
            workload = _profiling_tasks(rng)
            seconds = costs.execution_time(workload, cluster)[:, 0]
            noisy = seconds * rng.lognormal(0.0, MEASUREMENT_NOISE, seconds.shape)
            features = pair_features(task_features(workload), device_features(cluster)[0])
            rows.append(features)
            targets.append(target(features, noisy))
    return np.vstack(rows), np.concatenate(targets)


def _perturbed(base: DeviceModel, rng: np.random.Generator) -> DeviceModel:
    def scale(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    speed = scale(0.25, 4.0)
    return replace(
        base,
        speed=base.speed * speed,
        scalar_speed=base.scalar_speed * speed * scale(0.5, 2.0),
        bandwidth=base.bandwidth * scale(0.25, 4.0),
        latency=base.latency * scale(0.1, 10.0),
    )


def _profiling_tasks(rng: np.random.Generator) -> Workload:
    """Tasks spread log-uniformly over the sizes and data volumes runs meet: from a millisecond
    kernel to a multi-hour workflow step (1e-3 .. 1e7 GFLOP, 0.1 MB .. 100 GB), half of them
    from the synthetic generator's bimodal intensity, half uniform."""
    n = SAMPLES_PER_DEVICE
    size = np.exp(rng.uniform(np.log(1e-3), np.log(1e7), n))
    memory = np.exp(rng.uniform(np.log(0.1), np.log(1e5), n))
    _, bimodal, _ = TaskMix().draw(n, rng)
    intensity = np.where(rng.random(n) < 0.5, rng.random(n), bimodal)
    return Workload(size=size, intensity=intensity, memory=memory, arrival=np.zeros(n))


def fit_estimator(features: np.ndarray, targets: np.ndarray) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(**ESTIMATOR_PARAMS).fit(features, targets)


def train() -> HistGradientBoostingRegressor:
    """The recipe: the estimator fitted on the full profiling set."""
    return fit_estimator(*profiling_set(np.random.default_rng(SEED)))


def cache_key() -> str:
    """16 hex digits that change whenever the trained model could: the version, the feature
    names, scikit-learn's version, the recipe's constants, and a probe of the recipe itself (the
    profiling set of one device per kind, a few ms) that catches any change in the cost model,
    the features or the task generator that nobody remembered to version."""
    probe = profiling_set(np.random.default_rng(SEED), devices_per_kind=1)
    recipe = {
        "version": BOOTSTRAP_VERSION,
        "features": list(FEATURE_NAMES),
        "sklearn": sklearn.__version__,
        "constants": [SAMPLES_PER_DEVICE, DEVICES_PER_KIND, MEASUREMENT_NOISE, SEED],
        "estimator": ESTIMATOR_PARAMS,
        "probe": hashlib.sha256(b"".join(a.tobytes() for a in probe)).hexdigest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def bootstrap_model() -> SklearnPerformanceModel:
    """Loaded from the cache, else trained (and cached); once per process."""
    folder = get_settings().cache_dir
    estimator = model_cache.load_or_build(folder, CACHE_NAME, cache_key(), train)
    return SklearnPerformanceModel(estimator, BOOTSTRAP_VERSION)
