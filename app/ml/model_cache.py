"""Estimators every process needs, built once per machine and loaded by the next process.

A cached estimator is one skops artifact (`app.ml.artifacts`, never pickle) named
`<name>-<key>.<sha256>.skops`: `key` identifies the recipe that built it (the caller derives it
from everything the result depends on), the sha256 is the artifact's digest. On load, a file
whose bytes do not match its digest (truncated, corrupted, edited) or that holds types we do not
load is refused and removed, and the caller builds the estimator again. Files are written to a
temporary name and renamed (atomic on POSIX), so processes that build at the same time all end
with a complete file and never read a partial one. The cache is never authoritative: a folder
that cannot be written only means building in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.ml.artifacts import dumps, loads

SUFFIX = ".skops"


def load_or_build(folder: Path, name: str, key: str, build: Callable[[], Any]) -> Any:
    """The estimator cached under (`name`, `key`) in `folder`, else `build()`, cached for the
    next process when `folder` is writable."""
    cached = load(folder, name, key)
    if cached is not None:
        return cached
    estimator = build()
    store(folder, name, key, estimator)
    return estimator


def load(folder: Path, name: str, key: str) -> Any | None:
    """The first cached estimator for (`name`, `key`) that matches its digest, or None."""
    for path in sorted(folder.glob(f"{name}-{key}.*{SUFFIX}")):
        expected_digest = path.name.removesuffix(SUFFIX).rsplit(".", 1)[1]
        try:
            data = path.read_bytes()
        except OSError:
            continue
        try:
            return loads(data, expected_digest)
        except Exception:  # any unreadable artifact is a cache miss: refuse it, rebuild
            with contextlib.suppress(OSError):
                path.unlink()
    return None


def store(folder: Path, name: str, key: str, estimator: Any) -> Path | None:
    """Write `estimator` atomically; the path written, or None where `folder` is not writable."""
    data, digest = dumps(estimator)
    temporary: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}-", delete=False) as file:
            temporary = file.name
            file.write(data)
        path = folder / f"{name}-{key}.{digest}{SUFFIX}"
        os.replace(temporary, path)
        return path
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return None
