"""Domain errors mapped to HTTP responses, in one place."""

from __future__ import annotations

import logging
from http import HTTPMethod
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
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


def _detail(exc: Exception) -> object:
    """The body's `detail`: the message; for a refused part of the request, pydantic's shape
    (a list naming where it is); for an unavailable dependency, which one."""
    if isinstance(exc, Invalid):
        return [{"loc": list(exc.location), "msg": str(exc), "type": exc.kind}]
    if isinstance(exc, TransientStoreError):
        message = f"{exc.dependency} is unavailable, retry later"
        return {
            "dependency": exc.dependency,
            "message": f"{message}; {exc.note}" if exc.note else message,
        }
    return str(exc)


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

    for kind in STATUS:
        app.add_exception_handler(kind, _render)
