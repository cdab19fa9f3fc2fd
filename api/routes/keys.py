"""/api/v1/keys: API keys, one per tenant (admin keys only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import Caller
from api.errors import AUTH, responses
from api.links import BODY_NAME, link, linked
from api.schemas import KeyCreatedOut, KeyIn, KeyOut
from app.services import keys
from app.tenancy import NAME_PATTERN

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])

KeyName = Annotated[str, Path(pattern=NAME_PATTERN.pattern)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreatedOut,
    responses={
        **linked(
            201, {"RevokeKey": link("POST", f"{router.prefix}/{{name}}/revoke", name=BODY_NAME)}
        ),
        **responses(400, *AUTH, 409, 413, 503),
    },
)
def create(body: KeyIn, tenant: Caller) -> KeyCreatedOut:
    """A new key for a tenant, shown once (409 if the name has an active key: revoke it first)."""
    created = keys.create_key(tenant, body.name, body.admin)
    return KeyCreatedOut(**KeyOut.of(created.info).model_dump(), key=created.key)


@router.get("", response_model=list[KeyOut], responses=responses(*AUTH, 503))
def list_keys(tenant: Caller) -> list[KeyOut]:
    """Every key, without the key itself: HMS_API_KEYS' first, then created ones."""
    return [KeyOut.of(info) for info in keys.list_keys(tenant)]


@router.post(
    "/{name}/revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(*AUTH, 404, 409, 503),
)
def revoke(name: KeyName, tenant: Caller) -> None:
    """Revoke the name's active key: refused from the next request on. The tenant's work stays;
    a new key with the same name gets it back."""
    keys.revoke_key(tenant, name)
