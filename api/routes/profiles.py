"""/api/v1/profiles: kernel profiles, what a machine measured (docs/profiles.md). Upload one,
list the shipped ones and yours, read one whole."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Response, status

from api.deps import Caller
from api.errors import AUTH, responses
from api.limits import check_submission_rate
from api.links import BODY_NAME, link, linked
from api.schemas import ProfileOut, ProfileSummaryOut
from app.profilespec import ProfileSpec
from app.services import profiles

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProfileSummaryOut,
    responses={
        **linked(201, {"GetProfile": link("GET", f"{router.prefix}/{{name}}", name=BODY_NAME)}),
        **responses(400, *AUTH, 409, 413, 429, 503),
    },
)
def upload(profile: ProfileSpec, response: Response, tenant: Caller) -> ProfileSummaryOut:
    """Store a profile of yours; 409 if you have one of that name or a shipped one has it
    (profiles are not replaced). An invalid one is a 422 naming the field."""
    check_submission_rate(tenant.key_id)
    summary = profiles.upload_profile(tenant, profile)
    response.headers["Location"] = f"{router.prefix}/{summary.name}"
    return ProfileSummaryOut.model_validate(summary)


@router.get("", response_model=list[ProfileSummaryOut], responses=responses(*AUTH, 503))
def list_profiles(tenant: Caller) -> list[ProfileSummaryOut]:
    """The shipped profiles, then yours (an admin key: everyone's), each by name."""
    return [ProfileSummaryOut.model_validate(s) for s in profiles.list_profiles(tenant)]


@router.get("/{name}", response_model=ProfileOut, responses=responses(*AUTH, 404, 503))
def get_profile(name: str, tenant: Caller) -> ProfileOut:
    """A shipped profile or one of yours, whole (another tenant's is a 404)."""
    view = profiles.get_profile(tenant, name)
    return ProfileOut(**asdict(view.summary), document=view.document)
