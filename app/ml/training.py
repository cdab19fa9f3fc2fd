"""Training samples, fitting, evaluation and the promotion rule: the learning loop's logic,
without storage (services/training.py runs it against the database).

A sample is one task seen on one kind of device: the features of the pair (features.py) and the
observed execution time. Models predict ln(seconds), so errors are relative: an MAE of 0.1 means
predictions off by about 10 %. The holdout is every fifth sample (by id), so the active model and
a candidate are always judged on the same tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score

from app.ml.features import device_features, ln_seconds, pairs_of, target, task_features
from app.sim.cluster import DeviceKind
from app.sim.experiment import ORACLE, PolicyOutcome
from app.sim.problem import Problem

HOLDOUT_EVERY = 5
ALGORITHM = "sklearn.ensemble.HistGradientBoostingRegressor(ln seconds per GFLOP)"
FIT_CHUNK = 50  # boosting iterations between two progress reports
KINDS = {DeviceKind.CPU: "cpu", DeviceKind.GPU: "gpu"}


@dataclass(frozen=True)
class Samples:
    """Columns of samples: features (n, k), device_kind (n,), seconds (n,), oracle_share (n,)
    (NaN where oracle did not split the task), and the samples' ids when they come from storage."""

    features: np.ndarray
    device_kind: np.ndarray
    seconds: np.ndarray
    oracle_share: np.ndarray
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def count(self) -> int:
        return int(self.seconds.shape[0])

    def subset(self, mask: np.ndarray) -> Samples:
        return Samples(
            self.features[mask],
            self.device_kind[mask],
            self.seconds[mask],
            self.oracle_share[mask],
            self.ids[mask] if self.ids.size else self.ids,
        )


@dataclass(frozen=True)
class RunSamples:
    """A run's samples as it makes and stores them (db/training.add_samples): every (device model,
    sampled task) pair, device model first, each pair's time and oracle's share of the task, and
    the features of each sampled task and of each device model once: a pair's features are the
    two side by side (`samples` spells them out). Stored that way, 1,000 tasks on 2 device models
    send PostgreSQL 40 KB of features instead of 160 KB (issue 23: ~1 ms of its CPU a run)."""

    task_features: np.ndarray  # (tasks, len(TASK_FEATURES))
    device_features: np.ndarray  # (device models, len(DEVICE_FEATURES))
    device_kind: np.ndarray  # (count,) int16
    seconds: np.ndarray  # (count,)
    oracle_share: np.ndarray  # (count,)

    @property
    def count(self) -> int:
        return int(self.seconds.shape[0])

    def samples(self) -> Samples:
        features = pairs_of(self.task_features, self.device_features)
        return Samples(features, self.device_kind, self.seconds, self.oracle_share)


def samples_from_run(
    problem: Problem, outcomes: list[PolicyOutcome], limit: int, rng: np.random.Generator
) -> RunSamples | None:
    """Up to `limit` tasks of a run (a seeded random choice), each with its time on every distinct
    device model; None for explicit-cost workloads (no features to learn from)."""
    if problem.workload.explicit or limit <= 0:
        return None
    n = problem.num_tasks
    tasks = np.sort(rng.choice(n, size=min(limit, n), replace=False))
    oracle = next((o.schedule for o in outcomes if o.policy == ORACLE), None)
    share = np.full(n, np.nan)
    if oracle is not None:
        split = oracle.partner >= 0
        share[split] = oracle.gpu_fraction[split]
    cluster = problem.cluster
    groups = cluster.model_groups(np.arange(problem.num_devices))
    models = np.array([group[0] for group in groups], dtype=np.int64)  # a device of each model
    return RunSamples(
        task_features=task_features(problem.workload, tasks),
        device_features=device_features(cluster)[models],
        device_kind=np.repeat(cluster.kind[models], tasks.size).astype(np.int16),
        seconds=problem.exec_time[np.ix_(tasks, models)].T.ravel(),
        oracle_share=np.tile(share[tasks], len(models)),
    )


def holdout_mask(ids: np.ndarray) -> np.ndarray:
    return ids % HOLDOUT_EVERY == 0


@dataclass(frozen=True)
class FitParams:
    max_iter: int = 300
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    random_state: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "random_state": self.random_state,
        }


def fit(
    samples: Samples,
    params: FitParams,
    on_progress: Callable[[float], None] | None = None,
) -> HistGradientBoostingRegressor:
    """Fit ln(seconds per GFLOP) (features.target) on the features, reporting progress every
    FIT_CHUNK iterations."""
    estimator = HistGradientBoostingRegressor(
        max_iter=min(FIT_CHUNK, params.max_iter),
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        random_state=params.random_state,
        warm_start=True,
        early_stopping=False,
    )
    goal = target(samples.features, samples.seconds)
    while True:
        estimator.fit(samples.features, goal)
        if on_progress is not None:
            on_progress(estimator.max_iter / params.max_iter)
        if estimator.max_iter >= params.max_iter:
            return estimator
        estimator.set_params(max_iter=min(estimator.max_iter + FIT_CHUNK, params.max_iter))


def evaluate(estimator: Any, holdout: Samples) -> dict[str, Any]:
    """MAE and R² of ln seconds, overall and per target (the time on a CPU core, on a GPU)."""
    truth = np.log(np.maximum(holdout.seconds, 1e-12))
    predicted = ln_seconds(holdout.features, estimator.predict(holdout.features))
    metrics: dict[str, Any] = {"ln_seconds": _scores(truth, predicted)}
    for kind, name in KINDS.items():
        mask = holdout.device_kind == kind
        if mask.sum() >= 2:
            metrics[f"{name}_ln_seconds"] = _scores(truth[mask], predicted[mask])
    return metrics


def _scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "mae": float(mean_absolute_error(truth, predicted)),
        "r2": float(r2_score(truth, predicted)) if truth.size >= 2 else float("nan"),
        "count": int(truth.size),
    }


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def promotion_verdict(
    candidate: dict[str, Any], active: dict[str, Any] | None, active_version: int | None
) -> Verdict:
    """Promote when there is no active model, or when the candidate's holdout MAE (ln seconds) is
    lower than the active model's on the same holdout."""
    new = candidate["ln_seconds"]["mae"]
    if active is None:
        return Verdict(True, f"no active model; holdout MAE {new:.4f}")
    old = active["ln_seconds"]["mae"]
    if new < old:
        return Verdict(True, f"holdout MAE {new:.4f} < active v{active_version}'s {old:.4f}")
    return Verdict(False, f"holdout MAE {new:.4f} >= active v{active_version}'s {old:.4f}")


def skip_reason(count: int, minimum: int) -> str | None:
    """Why a retrain does not train at all, or None when there is enough data."""
    if count < minimum:
        return f"skipped: {count} samples < minimum {minimum}"
    return None
