import pytest
import skops.io as sio

from app.ml.artifacts import ArtifactError, dumps, loads
from app.ml.bootstrap import bootstrap_model


def test_an_estimator_round_trips_and_predicts_the_same():
    import numpy as np

    from app.ml.features import FEATURE_NAMES

    estimator = bootstrap_model().estimator
    data, digest = dumps(estimator)
    restored = loads(data, digest)
    x = np.random.default_rng(0).random((20, len(FEATURE_NAMES)))
    assert (restored.predict(x) == estimator.predict(x)).all()


def test_an_artifact_that_does_not_match_its_digest_is_refused():
    data, digest = dumps(bootstrap_model().estimator)
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(ArtifactError, match="digest"):
        loads(tampered, digest)


class Surprise:
    """Not a type we load."""


def test_an_artifact_with_foreign_types_is_refused_before_loading():
    data = sio.dumps({"payload": Surprise()})
    from app.ml.artifacts import digest

    with pytest.raises(ArtifactError, match="do not load"):
        loads(data, digest(data))
