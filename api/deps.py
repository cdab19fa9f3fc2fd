"""Request dependencies: authentication and the run queue."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Security, status
from fastapi.security import APIKeyHeader

from app.settings import get_settings
from workers.queue import CeleryQueue

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def require_api_key(key: Annotated[str | None, Security(_api_key_header)]) -> str:
    """Every mutating endpoint depends on this: 401 without a key, 403 with an unknown one."""
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing X-API-Key header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    known_keys = get_settings().api_key_set
    if not any(hmac.compare_digest(key.encode(), known.encode()) for known in known_keys):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid API key")
    return key


def get_queue() -> CeleryQueue:
    return CeleryQueue()


ApiKey = Annotated[str, Depends(require_api_key)]
Queue = Annotated[CeleryQueue, Depends(get_queue)]
