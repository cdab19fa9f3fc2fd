"""Who is asking: a tenant is the name of an API key (a team). Services take the caller's tenant
and every query filters by it (app/db/scope.py); an admin key sees every tenant's work."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import AdminRequired

#: What a tenant may be called: letters, digits, `_`, `.`, `-`; it is shown and logged as is.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Tenant:
    name: str
    is_admin: bool = False
    #: Identifies the key itself (a prefix of its digest): rate limits count per key.
    key_id: str = ""


def check_name(name: str) -> str:
    """`name` if it may name a tenant, else ValueError saying what may."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{name!r} cannot name an API key: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def require_admin(tenant: Tenant, action: str) -> None:
    """AdminRequired unless `tenant` is an admin key: for what every tenant shares."""
    if not tenant.is_admin:
        raise AdminRequired(action)
