"""Domain errors mapped to HTTP responses, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from app.errors import (
    HmsError,
    IdempotencyConflict,
    InvalidSpec,
    JobNotFound,
    RunNotCancellable,
    RunNotFound,
    ScheduleNotFound,
    TransientStoreError,
    VersionNotFound,
)

RETRY_AFTER_S = 5


def _detail(status_code: int, detail: object, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RunNotFound)
    @app.exception_handler(ScheduleNotFound)
    @app.exception_handler(JobNotFound)
    @app.exception_handler(VersionNotFound)
    async def _not_found(_: Request, exc: HmsError) -> JSONResponse:
        return _detail(status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(RunNotCancellable)
    async def _not_cancellable(_: Request, exc: RunNotCancellable) -> JSONResponse:
        return _detail(status.HTTP_409_CONFLICT, str(exc))

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

    @app.exception_handler(TransientStoreError)
    async def _unavailable(_: Request, exc: TransientStoreError) -> JSONResponse:
        return _detail(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            {
                "dependency": exc.dependency,
                "message": f"{exc.dependency} is unavailable, retry later",
            },
            **{"Retry-After": str(RETRY_AFTER_S)},
        )
