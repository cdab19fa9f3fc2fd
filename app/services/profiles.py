"""Kernel profiles as a resource: upload one (validated by `ProfileSpec` at the edge), list the
shipped profiles and the caller's own, read one whole.

A tenant sees the shipped profiles (package data, app/profiles/) and its own uploads; an admin
key sees every tenant's. Names are unique per tenant and may not repeat a shipped name, so a
name a tenant's cluster gives means one profile for that tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.db import profiles as store
from app.db.models import KernelProfile
from app.db.session import session_scope
from app.errors import ProfileConflict, ProfileNotFound
from app.profilespec import ProfileSpec, load_shipped_profile, shipped_profile_names
from app.runspec import ProfileLookup, kernel_profile
from app.sim.profile import Profile
from app.tenancy import Tenant


@dataclass(frozen=True)
class ProfileSummary:
    """What a listing shows of a profile. `tenant` is None for a shipped profile; sizes are the
    tile edges b measured, the smallest and the largest over every kernel and device."""

    name: str
    shipped: bool
    tenant: str | None
    created_at: datetime | None
    source: str
    description: str
    date: str
    kernels: list[str]
    devices: list[str]
    min_size: int
    max_size: int
    timings: int


@dataclass(frozen=True)
class ProfileView:
    summary: ProfileSummary
    document: ProfileSpec


def summarize(spec: ProfileSpec) -> dict[str, Any]:
    """The summary fields a profile's document determines (stored beside an upload)."""
    sizes = [timing.size for timing in spec.timings]
    return {
        "source": spec.provenance.source,
        "description": spec.description,
        "date": spec.provenance.date,
        "kernels": sorted({timing.kernel for timing in spec.timings}),
        "devices": [device.kind for device in spec.devices],
        "min_size": min(sizes),
        "max_size": max(sizes),
        "timings": len(spec.timings),
    }


def upload_profile(tenant: Tenant, spec: ProfileSpec) -> ProfileSummary:
    """Store the caller's profile; ProfileConflict if the name is shipped or already theirs
    (a profile is not replaced: runs that named it must keep meaning the same numbers)."""
    if spec.name in shipped_profile_names():
        raise ProfileConflict(spec.name, "a shipped profile has this name")
    document = spec.model_dump(mode="json")
    try:
        with session_scope() as session:
            row = store.add_profile(
                session,
                tenant=tenant.name,
                name=spec.name,
                summary=summarize(spec),
                document=document,
            )
            summary = _stored_summary(row)
    except IntegrityError as exc:  # already theirs, or an upload of the same name won the race
        raise ProfileConflict(spec.name, "you have a profile of this name already") from exc
    return summary


def list_profiles(tenant: Tenant) -> list[ProfileSummary]:
    """The shipped profiles, then the caller's own (an admin: everyone's), each by name."""
    shipped = [_shipped_summary(load_shipped_profile(name)) for name in shipped_profile_names()]
    with session_scope() as session:
        rows = store.list_profiles(session, None if tenant.is_admin else tenant.name)
        return shipped + [_stored_summary(row) for row in rows]


def get_profile(tenant: Tenant, name: str) -> ProfileView:
    """A shipped profile, or the caller's own; an admin key also finds another tenant's (its
    own first, then the oldest upload of that name). ProfileNotFound otherwise, as for an
    unknown name: another tenant's profile does not exist for the caller."""
    if name in shipped_profile_names():
        spec = load_shipped_profile(name)
        return ProfileView(_shipped_summary(spec), spec)
    with session_scope() as session:
        row = store.by_name(session, name, tenant.name)
        if row is None and tenant.is_admin:
            row = store.by_name(session, name, None)
        if row is None:
            raise ProfileNotFound(name, shipped_profile_names())
        return ProfileView(_stored_summary(row), ProfileSpec.model_validate(row.document))


def run_profiles(tenant: str | None) -> ProfileLookup:
    """What a run of `tenant` may name in `cluster.profile`: a shipped profile or one of the
    tenant's own uploads (an admin's runs too: its own only, so that the worker, which knows the
    run's tenant, finds what the API accepted). A run with no tenant (recorded before tenants
    existed) names shipped profiles only."""
    return kernel_profile if tenant is None else partial(_run_profile, tenant)


@lru_cache(maxsize=64)
def _run_profile(tenant: str, name: str) -> Profile:
    """Cached: a profile is never replaced or changed once uploaded (upload_profile), so a name
    keeps meaning the same numbers; an unknown name raises and is not cached."""
    if name in shipped_profile_names():
        return kernel_profile(name)
    with session_scope() as session:
        row = store.by_name(session, name, tenant)
        if row is None:
            raise ProfileNotFound(name, shipped_profile_names())
        document = row.document
    return ProfileSpec.model_validate(document).to_profile()


def _shipped_summary(spec: ProfileSpec) -> ProfileSummary:
    return ProfileSummary(
        name=spec.name, shipped=True, tenant=None, created_at=None, **summarize(spec)
    )


def _stored_summary(row: KernelProfile) -> ProfileSummary:
    return ProfileSummary(
        name=row.name, shipped=False, tenant=row.tenant, created_at=row.created_at, **row.summary
    )
