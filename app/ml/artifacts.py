"""Model artifacts: scikit-learn estimators serialized with skops, never pickle.

skops stores an estimator as data and, on load, refuses any type it does not trust. We trust
exactly the types our estimators are made of (`TRUSTED_TYPES` on top of skops' defaults), and
check the artifact's sha256 digest against the registry before loading it at all, so a modified
or foreign artifact is rejected before any of it is interpreted.
"""

from __future__ import annotations

import hashlib
from typing import Any

import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

FORMAT = "skops"
#: Types beyond skops' defaults that HistGradientBoostingRegressor needs.
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


class ArtifactError(ValueError):
    """An artifact does not match its digest, or contains types we do not load."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(estimator: Any) -> tuple[bytes, str]:
    """(artifact bytes, sha256 digest)."""
    data = sio.dumps(estimator)
    return data, digest(data)


def loads(data: bytes, expected_digest: str) -> Any:
    """The estimator in `data`. skops audits every type in the file before it constructs any
    object, so one pass suffices (asking `get_untrusted_types` first parsed the file twice:
    0.24 s instead of 0.15 s for the bootstrap model on a 2-core VM)."""
    if digest(data) != expected_digest:
        raise ArtifactError("the artifact does not match its recorded sha256 digest")
    try:
        return sio.loads(data, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ArtifactError(f"the artifact contains types we do not load: {exc}") from exc
