"""Request dependencies: who is asking (the tenant of the API key), which run, study or
retraining job a path names (its id or a prefix of it), and the run queue."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Security, status
from fastapi.security import APIKeyCookie, APIKeyHeader

from app.errors import AdminRequired
from app.services import keys, short_ids
from app.tenancy import Tenant
from workers.queue import CeleryQueue

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
#: The dashboard's login keeps the key in this cookie (HttpOnly, SameSite=Strict), so a
#: browser's own requests (pages, EventSource) authenticate without script access to the key.
SESSION_COOKIE = "hms_key"
_api_key_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)


def current_tenant(
    header: Annotated[str | None, Security(_api_key_header)],
    cookie: Annotated[str | None, Security(_api_key_cookie)],
) -> Tenant:
    """Every /api/v1 endpoint depends on this: the key from the X-API-Key header, else from the
    dashboard's cookie; 401 without one, 403 with an unknown or revoked one."""
    key = header or cookie
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing X-API-Key header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    return keys.resolve(key)


def admin_tenant(tenant: Annotated[Tenant, Depends(current_tenant)]) -> Tenant:
    """Endpoints that change what every tenant shares (the model, keys): admin keys only."""
    if not tenant.is_admin:
        raise AdminRequired("activate a model version, retrain, or manage API keys")
    return tenant


#: A path's id: the full uuid, or (as git takes a commit's) its first 4 or more hex digits.
IdText = Annotated[
    str,
    Path(
        description="The id, or a prefix of it of 4 or more hex digits that only one of yours "
        "starts with (404 if none does, 422 if several do).",
        # Stated here, checked by short_ids.resolve_id with a message that names the rule.
        json_schema_extra={"pattern": short_ids.ID_PATTERN},
    ),
]


def _run_id(run_id: IdText, tenant: Annotated[Tenant, Depends(current_tenant)]) -> uuid.UUID:
    return short_ids.resolve_id(tenant, short_ids.RUN, run_id)


def _study_id(study_id: IdText, tenant: Annotated[Tenant, Depends(current_tenant)]) -> uuid.UUID:
    return short_ids.resolve_id(tenant, short_ids.STUDY, study_id)


def _job_id(job_id: IdText, tenant: Annotated[Tenant, Depends(current_tenant)]) -> uuid.UUID:
    return short_ids.resolve_id(tenant, short_ids.RETRAINING_JOB, job_id)


def get_queue() -> CeleryQueue:
    return CeleryQueue()


Caller = Annotated[Tenant, Depends(current_tenant)]
Admin = Annotated[Tenant, Depends(admin_tenant)]
Queue = Annotated[CeleryQueue, Depends(get_queue)]
RunId = Annotated[uuid.UUID, Depends(_run_id)]
StudyId = Annotated[uuid.UUID, Depends(_study_id)]
JobId = Annotated[uuid.UUID, Depends(_job_id)]
