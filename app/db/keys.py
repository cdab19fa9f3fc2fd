"""Query functions for API keys. They take the caller's session and never commit."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import ApiKey, utcnow


def by_digest(session: Session, digest: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.digest == digest)).one_or_none()


def active_by_name(session: Session, name: str) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    return session.scalars(query).one_or_none()


def add_key(session: Session, *, name: str, digest: str, is_admin: bool) -> ApiKey:
    key = ApiKey(name=name, digest=digest, is_admin=is_admin)
    session.add(key)
    session.flush()
    return key


def list_keys(session: Session) -> list[ApiKey]:
    """Every key ever created, active first, then by name and age."""
    query = select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.name, ApiKey.id)
    return list(session.scalars(query))


def revoke(session: Session, name: str) -> int:
    """Revoke the name's active key; how many were revoked (0 or 1)."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
