"""The domain's exceptions, mapped once to HTTP codes (api/errors.py) and once to Celery
retry / no-retry (workers/tasks.py)."""

from __future__ import annotations

import uuid


class HmsError(Exception):
    """Base class of every error the domain raises on purpose."""


class InvalidSpec(HmsError):
    """A run spec (or an imported workload) cannot be simulated; retrying will not help.
    `location` names the offending part of the request, as pydantic's error locations do."""

    def __init__(self, message: str, location: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__(message)
        self.location = location


class RunNotFound(HmsError):
    def __init__(self, run_id: object) -> None:
        super().__init__(f"run {run_id} does not exist")
        self.run_id = run_id


class RunNotCancellable(HmsError):
    def __init__(self, run_id: object, status: str) -> None:
        super().__init__(f"run {run_id} is already {status} and cannot be cancelled")
        self.run_id = run_id
        self.status = status


class RunNotDeletable(HmsError):
    def __init__(self, run_id: object, reason: str) -> None:
        super().__init__(f"run {run_id} cannot be deleted: {reason}")


class ScheduleNotFound(HmsError):
    def __init__(self, run_id: object, policy: str, status: str, available: list[str]) -> None:
        if available:
            reason = f"stored schedules: {', '.join(sorted(available))}"
        elif status == "succeeded":
            reason = "the run was too large to keep per-task schedules"
        else:
            reason = f"the run is {status}"
        super().__init__(f"run {run_id} has no schedule for policy {policy!r} ({reason})")


class StudyNotFound(HmsError):
    def __init__(self, study_id: object) -> None:
        super().__init__(f"study {study_id} does not exist")


class StudyNotCancellable(HmsError):
    def __init__(self, study_id: object, status: str) -> None:
        super().__init__(f"study {study_id} is already {status} and cannot be cancelled")


class StudyNotDeletable(HmsError):
    def __init__(self, study_id: object, status: str) -> None:
        super().__init__(
            f"study {study_id} is {status}: cancel it (POST .../cancel) before deleting it"
        )


class StudyNotReady(HmsError):
    """A study's statistics exist only once every run ended and it was aggregated."""

    def __init__(self, study_id: object, status: str, finished: int, total: int) -> None:
        super().__init__(
            f"study {study_id} has no statistics yet: it is {status}, {finished} of {total} "
            "runs ended"
        )


class JobNotFound(HmsError):
    def __init__(self, job_id: object) -> None:
        super().__init__(f"retraining job {job_id} does not exist")


class VersionNotFound(HmsError):
    def __init__(self, version: int) -> None:
        super().__init__(f"model version {version} does not exist")


class UnknownKey(HmsError):
    """An API key that is not known, or was revoked."""


class AdminRequired(HmsError):
    """Only an admin key may do this (shared state: the model, other tenants' keys)."""

    def __init__(self, action: str) -> None:
        super().__init__(f"only an admin API key may {action}")


class KeyNotFound(HmsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no active API key is named {name!r}")


class KeyConflict(HmsError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"API key {name!r}: {reason}")


class IdempotencyConflict(HmsError):
    """The same Idempotency-Key was used before with a different request body."""


class TransientStoreError(HmsError):
    """The database or the broker is unreachable right now; the operation may be retried.
    `detail` is for logs (it may name hosts); `note` is for the client."""

    def __init__(self, dependency: str, detail: str, note: str | None = None) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail
        self.note = note


class ClaimLost(TransientStoreError):
    """Work found queued again when it reports progress or finishes: its claim, an asynchronous
    commit (app/services/lifecycle.py), was lost in a crash of the database server. Retried like
    any transient fault; the retry claims it again."""

    def __init__(self, row_id: uuid.UUID) -> None:
        super().__init__("database", f"the claim of {row_id} was lost (did the database crash?)")
