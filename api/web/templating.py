"""The dashboard's Jinja2 environment and the filters its templates format numbers with."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

#: What a missing value shows as.
MISSING = "\N{EN DASH}"

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def number(value: Any, digits: int = 4) -> str:
    """A metric as people read it: 4 significant digits, a dash for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def seconds(value: Any) -> str:
    """A duration in the unit that keeps it between 1 and 1000: 19.7 µs, 1.111 ms, 2.5 s."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value / 1e-9:.4g} ns"


def percent(value: Any) -> str:
    return MISSING if value is None else f"{100 * value:.1f} %"


def when(value: datetime | None) -> str:
    return MISSING if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.env.filters.update(number=number, seconds=seconds, percent=percent, when=when)


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)
