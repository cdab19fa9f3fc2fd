"""The model `learned` uses before the registry has one: trained on a generated profiling set.

It stands in for "measure a few hundred kernels on each device": tasks spread over a wide range
of sizes and data volumes, devices drawn around the defaults (speeds x1/4..x4, links x1/4..x4,
latencies x1/10..x10), times from the cost model with 10 % log-normal measurement noise.
Deterministic (fixed seeds), trained once per process (about a second).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from app.ml.features import device_features, pair_features, target, task_features
from app.ml.performance_model import SklearnPerformanceModel
from app.sim import costs
from app.sim.cluster import DEFAULT_CPU, DEFAULT_GPU, Cluster, DeviceKind, DeviceModel
from app.sim.generators import TaskMix
from app.sim.workload import Workload

BOOTSTRAP_VERSION = "bootstrap-1"
SAMPLES_PER_DEVICE = 1000
DEVICES_PER_KIND = 40
MEASUREMENT_NOISE = 0.10
SEED = 20021


def profiling_set(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(features, targets: ln seconds per GFLOP) for generated tasks on generated devices."""
    rows, targets = [], []
    for kind, base in ((DeviceKind.CPU, DEFAULT_CPU), (DeviceKind.GPU, DEFAULT_GPU)):
        for _ in range(DEVICES_PER_KIND):
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
    estimator = HistGradientBoostingRegressor(max_iter=400, learning_rate=0.1, random_state=SEED)
    return estimator.fit(features, targets)


@lru_cache(maxsize=1)
def bootstrap_model() -> SklearnPerformanceModel:
    features, targets = profiling_set(np.random.default_rng(SEED))
    return SklearnPerformanceModel(fit_estimator(features, targets), BOOTSTRAP_VERSION)
