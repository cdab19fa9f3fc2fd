"""The Profiles list and a profile's page: its provenance, each kernel's time against tile size
per kind of device with error bars, the acceleration over the CPU, and the links."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web import charts
from api.web.runs import not_found
from api.web.session import Viewer
from api.web.templating import render
from app.errors import ProfileNotFound
from app.services import profiles

router = APIRouter(include_in_schema=False)


@router.get("/profiles")
def profiles_page(request: Request, tenant: Viewer) -> Response:
    context = {"tenant": tenant, "summaries": profiles.list_profiles(tenant)}
    return render(request, "profiles.html", context)


@router.get("/profiles/{name}")
def profile_page(request: Request, name: str, tenant: Viewer) -> Response:
    try:
        view = profiles.get_profile(tenant, name)
    except ProfileNotFound:
        return not_found(request, tenant, f"kernel profile {name!r}")
    spec = view.document
    kernels = []
    for kernel in view.summary.kernels:
        timings = [t for t in spec.timings if t.kernel == kernel]
        kernels.append(
            {
                "name": kernel,
                "timings": charts.kernel_timings(kernel, timings),
                "caption": charts.spread_caption(timings),
                "series": charts.timing_series(timings),
                "acceleration": charts.acceleration_curve(kernel, timings),
                "accelerations": charts.accelerations(timings),
            }
        )
    context = {
        "tenant": tenant,
        "summary": view.summary,
        "spec": spec,
        "kernels": kernels,
        "reference": charts.REFERENCE_KIND,
    }
    return render(request, "profile.html", context)
