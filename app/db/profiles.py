"""Query functions for uploaded kernel profiles. They take the caller's session and never
commit. `tenant` None means every tenant's (an admin key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from app.db.models import KernelProfile


def add_profile(
    session: Session, *, tenant: str, name: str, summary: dict[str, Any], document: dict[str, Any]
) -> KernelProfile:
    """Insert it; an IntegrityError at the flush if the tenant already has that name."""
    profile = KernelProfile(tenant=tenant, name=name, summary=summary, document=document)
    session.add(profile)
    session.flush()
    return profile


def list_profiles(session: Session, tenant: str | None) -> list[KernelProfile]:
    """The profiles of `tenant` (None: everyone's) by name, then tenant; documents not loaded."""
    query = select(KernelProfile).options(defer(KernelProfile.document, raiseload=True))
    if tenant is not None:
        query = query.where(KernelProfile.tenant == tenant)
    return list(session.scalars(query.order_by(KernelProfile.name, KernelProfile.tenant)))


def by_name(session: Session, name: str, tenant: str | None) -> KernelProfile | None:
    """The profile `name` of `tenant`; with None, any tenant's, the oldest first."""
    query = select(KernelProfile).where(KernelProfile.name == name)
    if tenant is not None:
        query = query.where(KernelProfile.tenant == tenant)
    query = query.order_by(KernelProfile.created_at, KernelProfile.id).limit(1)
    return session.scalars(query).one_or_none()
