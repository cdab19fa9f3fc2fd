"""Idempotency keys, the same for runs and studies: a key names one request body (by digest);
sending the same body again returns what the first request created, another body is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from app.db.session import session_scope
from app.errors import IdempotencyConflict


class Keyed(Protocol):
    request_digest: str


T = TypeVar("T", bound=Keyed)


def request_digest(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a request body."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_by_key(lookup: Callable[[Session, str], T | None], key: str, digest: str) -> T | None:
    """What an earlier request with `key` created (None: nothing); IdempotencyConflict if that
    request had another body."""
    with session_scope() as session:
        found = lookup(session, key)
    if found is not None and found.request_digest != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different request body"
        )
    return found
