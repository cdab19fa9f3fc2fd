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
    AdminRequired,
    HmsError,
    IdempotencyConflict,
    InvalidSpec,
    JobNotFound,
    KeyConflict,
    KeyNotFound,
    RunNotCancellable,
    RunNotDeletable,
    RunNotFound,
    ScheduleNotFound,
    StudyNotCancellable,
    StudyNotDeletable,
    StudyNotFound,
    StudyNotReady,
    TransientStoreError,
    UnknownKey,
    VersionNotFound,
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


def _detail(status_code: int, detail: object, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers or None)


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

    @app.exception_handler(RunNotFound)
    @app.exception_handler(ScheduleNotFound)
    @app.exception_handler(JobNotFound)
    @app.exception_handler(StudyNotFound)
    @app.exception_handler(VersionNotFound)
    @app.exception_handler(KeyNotFound)
    async def _not_found(_: Request, exc: HmsError) -> JSONResponse:
        return _detail(status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(RunNotCancellable)
    @app.exception_handler(StudyNotCancellable)
    @app.exception_handler(StudyNotReady)
    @app.exception_handler(RunNotDeletable)
    @app.exception_handler(StudyNotDeletable)
    @app.exception_handler(KeyConflict)
    async def _not_cancellable(_: Request, exc: HmsError) -> JSONResponse:
        return _detail(status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(UnknownKey)
    @app.exception_handler(AdminRequired)
    async def _forbidden(_: Request, exc: HmsError) -> JSONResponse:
        return _detail(status.HTTP_403_FORBIDDEN, str(exc))

    @app.exception_handler(InvalidSpec)
    async def _invalid_spec(_: Request, exc: InvalidSpec) -> JSONResponse:
        return _detail(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": list(exc.location), "msg": str(exc), "type": "invalid_spec"}],
        )

    @app.exception_handler(IdempotencyConflict)
    async def _idempotency_conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        return _detail(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": str(exc),
                    "type": "idempotency_conflict",
                }
            ],
        )

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return _detail(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), **{"Retry-After": str(exc.retry_after_s)}
        )

    @app.exception_handler(TransientStoreError)
    async def _unavailable(_: Request, exc: TransientStoreError) -> JSONResponse:
        log.warning("answering 503: %s", exc)
        message = f"{exc.dependency} is unavailable, retry later"
        if exc.note:
            message = f"{message}; {exc.note}"
        return _detail(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            {"dependency": exc.dependency, "message": message},
            **{"Retry-After": str(RETRY_AFTER_S)},
        )
