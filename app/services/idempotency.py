"""Submitting work once, the same for runs and studies.

An Idempotency-Key names one request body (by its digest): sending the same body again returns
what the first request created, another body is refused. `submit_once` is the whole story:
commit the new row, and only then send its message (a message never names an uncommitted row).

The replay rule: a replay returns the work the key created and sends its message if that was
never sent (`lifecycle.never_sent`: the first request committed, then the broker was down or its
process died before sending). A client that retries after a 503 thus gets its work started as
soon as the broker is back, without waiting for the recovery sweep. Work that was sent, or has
ended, is returned as it is. (A replay that races the first request, between its commit and its
send, sends a second message: harmless, as lifecycle.send says.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.session import session_scope
from app.errors import IdempotencyConflict
from app.services.lifecycle import Submitted, never_sent

S = TypeVar("S", bound=Submitted)


def request_digest(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a request body."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_once(
    key: str | None,
    document: dict[str, Any],
    *,
    lookup: Callable[[Session, str], S | None],
    create: Callable[[Session, str], S],
    send: Callable[[S], None],
) -> tuple[S, bool]:
    """The work submitted with `key` (the request body `document`), and whether this call
    created it.

    `lookup(session, key)` finds what an earlier request with the key created; `create(session,
    digest)` adds the new row (committed when it returns); `send(row)` sends its message and
    raises TransientStoreError if the broker is down (the row stays committed, unsent). Raises
    IdempotencyConflict if the key was used with another body."""
    digest = request_digest(document)
    if key is not None:
        existing = _find(lookup, key, digest)
        if existing is not None:
            if never_sent(existing):
                send(existing)
            return existing, False
    try:
        with session_scope() as session:
            row = create(session, digest)
    except IntegrityError:
        # Another request with the same key committed first; it sends the message (or, if the
        # broker is down, the next replay or the recovery sweep does).
        existing = _find(lookup, key, digest) if key is not None else None
        if existing is None:
            raise
        return existing, False
    send(row)
    return row, True


def _find(lookup: Callable[[Session, str], S | None], key: str, digest: str) -> S | None:
    """What an earlier request with `key` created (None: nothing); IdempotencyConflict if that
    request had another body."""
    with session_scope() as session:
        found = lookup(session, key)
    if found is not None and found.request_digest != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different request body"
        )
    return found
