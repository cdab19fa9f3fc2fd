"""Domain errors mapped to HTTP responses, in one place."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from http import HTTPMethod
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.limits import RateLimited
from api.schemas import ErrorOut, UnavailableOut
from app.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    NotReady,
    TransientStoreError,
)

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5

_DESCRIPTIONS = {
    400: "The body could not be read (not UTF-8).",
    401: "No X-API-Key header.",
    403: "Unknown or revoked API key, or an admin key is needed.",
    404: "No such resource.",
    409: "Not possible in the resource's current state.",
    413: "The request body is too large.",
    429: "Too many submissions with this key this minute (see Retry-After).",
    503: "The database or the broker is unavailable (see Retry-After).",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error answers a route can give."""
    return {
        code: {
            "model": UnavailableOut if code == 503 else ErrorOut,
            "description": _DESCRIPTIONS[code],
        }
        for code in codes
    }


AUTH = (401, 403)


#: The one table from a kind of error to its HTTP status; an error's class is looked up along
#: its bases, so a new error of a known kind needs no entry.
STATUS: dict[type[Exception], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Conflict: status.HTTP_409_CONFLICT,
    NotReady: status.HTTP_409_CONFLICT,
    Invalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
    RateLimited: status.HTTP_429_TOO_MANY_REQUESTS,
    TransientStoreError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def status_of(error: type[Exception]) -> int:
    """The status of the nearest of the error class's bases (itself first) in STATUS."""
    return next(STATUS[kind] for kind in error.__mro__ if kind in STATUS)


#: Characters of a refused value echoed back in a 422 (`input`), and of its message: the answer
#: names the field and the rule, it does not return the body (a 1.5 MB grid once came back as a
#: 1.29 MB error).
MAX_ECHO = 100
MAX_MESSAGE = 1000
#: Errors listed in one 422; the rest are counted in a last entry.
MAX_ERRORS = 50
#: The largest integer echoed as a number (I-JSON, RFC 7493); a larger one is echoed as text.
MAX_EXACT_INTEGER = 2**53 - 1


def _text(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, a lone surrogate written as its escape (`\\ud800`): the
    answer must encode as UTF-8 whatever the request held."""
    cut = value if len(value) <= limit else f"{value[:limit]}…"
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def _echo(value: object) -> object:
    """A refused value as a 422 may show it: short, and JSON whatever it was. A number that JSON
    cannot carry (NaN, Infinity, a huge integer) and an object or array come back as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) <= MAX_EXACT_INTEGER:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str):
        return _text(value, MAX_ECHO)
    if isinstance(value, bytes):
        return _text(value[: MAX_ECHO * 4].decode("utf-8", "backslashreplace"), MAX_ECHO)
    try:
        if isinstance(value, dict | list | tuple | float):
            return _text(json.dumps(value, default=repr), MAX_ECHO)
        return _text(str(value), MAX_ECHO)
    except Exception:  # e.g. a structure too deep for json.dumps, or a failing __str__
        return f"<{type(value).__name__}>"


def _error_out(error: dict[str, Any]) -> dict[str, Any]:
    """One error in pydantic's shape, safe to render: where, the rule, and the value cut short."""
    location = error.get("loc", ())
    out: dict[str, Any] = {
        "loc": [
            part if isinstance(part, int) else _text(str(part), MAX_ECHO)
            for part in (location if isinstance(location, Sequence) else (location,))
        ],
        "msg": _text(str(error.get("msg", "")), MAX_MESSAGE),
        "type": _text(str(error.get("type", "invalid")), MAX_ECHO),
    }
    if "input" in error:
        out["input"] = _echo(error["input"])
    context = error.get("ctx")
    if isinstance(context, dict):
        out["ctx"] = {_text(str(key), MAX_ECHO): _echo(item) for key, item in context.items()}
    return out


def validation_errors_out(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """A 422's `detail`: the first MAX_ERRORS errors, then one entry counting the others."""
    shown = [_error_out(error if isinstance(error, dict) else {}) for error in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        more = len(errors) - MAX_ERRORS
        shown.append({"loc": ["body"], "msg": f"and {more} more errors", "type": "too_many_errors"})
    return shown


def _detail(exc: Exception) -> object:
    """The body's `detail`: the message; for a refused part of the request, pydantic's shape
    (a list naming where it is); for an unavailable dependency, which one."""
    if isinstance(exc, Invalid):
        return validation_errors_out([{"loc": exc.location, "msg": str(exc), "type": exc.kind}])
    if isinstance(exc, TransientStoreError):
        message = f"{exc.dependency} is unavailable, retry later"
        return {
            "dependency": exc.dependency,
            "message": f"{message}; {exc.note}" if exc.note else message,
        }
    return _text(str(exc), MAX_MESSAGE)


def _headers(exc: Exception) -> dict[str, str] | None:
    """When to retry: a rate limit says; an unavailable dependency gets RETRY_AFTER_S."""
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, TransientStoreError):
        return {"Retry-After": str(RETRY_AFTER_S)}
    return None


async def _render(_: Request, exc: Exception) -> JSONResponse:
    """The one handler of every error in STATUS."""
    code = status_of(type(exc))
    if code == status.HTTP_503_SERVICE_UNAVAILABLE:
        log.warning("answering 503: %s", exc)
    return JSONResponse({"detail": _detail(exc)}, status_code=code, headers=_headers(exc))


async def _render_refused_request(_: Request, exc: Exception) -> JSONResponse:
    """A 422 from FastAPI's own validation: pydantic's errors, each value cut short. FastAPI's
    handler echoes each refused value whole, and fails (500) on a NaN or a lone surrogate."""
    assert isinstance(exc, RequestValidationError)
    try:
        detail = validation_errors_out(exc.errors())
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    except Exception:  # the answer to a refused request must never be a 500
        log.exception("a validation error could not be rendered")
        unrendered = {"loc": ["body"], "msg": "the request is invalid", "type": "invalid"}
        return JSONResponse(
            {"detail": [unrendered]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )


def _allowed_methods(request: Request) -> set[str]:
    """The methods the app routes for the request's path. Starlette's 405 names only the methods
    of the first route whose path matches (`GET` for /runs/{id}, which also has `DELETE`)."""
    return {
        method.value
        for method in HTTPMethod
        if any(
            route.matches({**request.scope, "method": method.value})[0] == Match.FULL
            for route in request.app.router.routes
        )
    }


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            allow = ", ".join(sorted(_allowed_methods(request)))
            exc = StarletteHTTPException(exc.status_code, exc.detail, {"Allow": allow})
        return await http_exception_handler(request, exc)

    app.add_exception_handler(RequestValidationError, _render_refused_request)
    for kind in STATUS:
        app.add_exception_handler(kind, _render)
