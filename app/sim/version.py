"""Which simulator produced a result: a digest of the core's code, stored with every run so that
a schedule recomputed on read that no longer matches the run can say whether the code changed."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

CORE = Path(__file__).resolve().parent


@functools.cache
def engine_version() -> str:
    """The first 16 hex digits of sha256 over numpy's version and every source file of app/sim
    (its path and bytes, in path order): the same code and numpy give the same version. Reading
    the ~50 files takes a few milliseconds, once per process."""
    sha = hashlib.sha256(f"numpy {np.__version__};".encode())
    for path in sorted(CORE.rglob("*.py")):
        sha.update(f"{path.relative_to(CORE).as_posix()};".encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]
