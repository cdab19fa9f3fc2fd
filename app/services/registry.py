"""Serving the active model: every worker process loads it once per version and notices a
promotion (or a rollback) at the next run, without a restart."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.db import training as store
from app.ml.artifacts import loads
from app.ml.bootstrap import bootstrap_model
from app.ml.features import FEATURE_NAMES
from app.ml.performance_model import SklearnPerformanceModel


def version_name(version: int) -> str:
    return f"v{version}"


@dataclass
class _Cache:
    version: int | None = None
    model: SklearnPerformanceModel | None = None


_cache = _Cache()


def active_model(session: Session) -> SklearnPerformanceModel:
    """The active version's model (verified by digest, loaded with skops), or the bootstrap model
    while no version is active."""
    active = store.active_version_number(session)
    if active is None:
        return bootstrap_model()
    version, digest = active
    if _cache.version != version or _cache.model is None:
        artifact = store.artifact_of(session, version)
        if artifact is None:  # deleted between the two queries
            return bootstrap_model()
        estimator = loads(artifact, digest)
        if getattr(estimator, "n_features_in_", len(FEATURE_NAMES)) != len(FEATURE_NAMES):
            # Trained on another feature set (before a migration retired it): unusable.
            return bootstrap_model()
        _cache.model = SklearnPerformanceModel(estimator, version_name(version))
        _cache.version = version
    return _cache.model
