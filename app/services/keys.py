"""API keys: who a key is (resolve), and creating, listing and revoking them.

A key names a tenant. Two sources: the bootstrap keys of HMS_API_KEYS (dev, compose; managed in
the environment) and keys created with `hms keys create`, of which only the sha256 digest is
stored. A key is 256 random bits, so a fast hash cannot be reversed; a slow hash would only cost
every request time. Every request resolves its key again: a revoked key is refused at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from app.db import keys as store
from app.db.session import session_scope
from app.errors import KeyConflict, KeyNotFound, UnknownKey
from app.settings import get_settings
from app.tenancy import Tenant, check_name, require_admin

KEY_PREFIX = "hms_"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def resolve(key: str) -> Tenant:
    """The tenant a presented key stands for; UnknownKey if it is unknown or revoked."""
    key_digest = digest(key)
    for known in get_settings().bootstrap_keys:
        if hmac.compare_digest(key_digest, digest(known.key)):
            return Tenant(known.name, known.is_admin, key_digest[:16])
    with session_scope() as session:
        stored = store.by_digest(session, key_digest)
        if stored is None:
            raise UnknownKey("invalid API key")
        if stored.revoked_at is not None:
            raise UnknownKey(f"this API key ({stored.name}) was revoked")
        return Tenant(stored.name, stored.is_admin, key_digest[:16])


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: never the key itself."""

    name: str
    is_admin: bool
    source: str  # "environment" (HMS_API_KEYS) or "database"
    created_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    info: KeyInfo
    key: str  # shown once, at creation


def create_key(caller: Tenant, name: str, is_admin: bool) -> CreatedKey:
    """A new key for tenant `name`; KeyConflict if the name has an active key. Admins only."""
    require_admin(caller, "manage API keys")
    check_name(name)
    if name in _bootstrap_names():
        raise KeyConflict(name, "it is configured in HMS_API_KEYS")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with session_scope() as session:
            if store.active_by_name(session, name) is not None:
                raise KeyConflict(name, "it has an active key: revoke it first to rotate it")
            created = store.add_key(session, name=name, digest=digest(key), is_admin=is_admin)
            info = KeyInfo(name, is_admin, "database", created.created_at, None)
    except IntegrityError as exc:  # another create of the same name committed first
        raise KeyConflict(name, "it has an active key") from exc
    return CreatedKey(info, key)


def list_keys(caller: Tenant) -> list[KeyInfo]:
    require_admin(caller, "manage API keys")
    bootstrap = [
        KeyInfo(known.name, known.is_admin, "environment", None, None)
        for known in get_settings().bootstrap_keys
    ]
    with session_scope() as session:
        stored = [
            KeyInfo(key.name, key.is_admin, "database", key.created_at, key.revoked_at)
            for key in store.list_keys(session)
        ]
    return bootstrap + stored


def revoke_key(caller: Tenant, name: str) -> None:
    """Revoke the active key of `name`: refused from the next request on. Admins only."""
    require_admin(caller, "manage API keys")
    if name in _bootstrap_names():
        raise KeyConflict(name, "it comes from HMS_API_KEYS: remove it there and restart")
    with session_scope() as session:
        if store.revoke(session, name) == 0:
            raise KeyNotFound(name)


def _bootstrap_names() -> set[str]:
    return {known.name for known in get_settings().bootstrap_keys}
