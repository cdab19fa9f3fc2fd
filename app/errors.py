"""The domain's exceptions, mapped once to HTTP codes (api/errors.py) and once to Celery
retry / no-retry (workers/tasks.py).

Each error derives from one of a few kinds, and the kind decides the HTTP status: `NotFound`
(404), `Conflict` (409: not possible in the state the thing is in), `NotReady` (409: not yet),
`Forbidden` (403), `Invalid` (422: a part of the request is refused) and `TransientStoreError`
(503: retry later)."""

from __future__ import annotations

import uuid
from typing import ClassVar


class HmsError(Exception):
    """Base class of every error the domain raises on purpose."""


class NotFound(HmsError):
    """The thing asked for does not exist (or belongs to another tenant)."""


class Conflict(HmsError):
    """Not possible in the state the thing is in (e.g. cancelling a run that ended)."""


class NotReady(HmsError):
    """Not available yet: the work it comes from has not succeeded (e.g. a queued run's results)."""


class Forbidden(HmsError):
    """The caller may not do this."""


class Invalid(HmsError):
    """A part of the request cannot be accepted as it is; retrying it unchanged will not help.
    `location` names that part as pydantic's error locations do; `kind` is the error's type."""

    kind: ClassVar[str] = "invalid"

    def __init__(self, message: str, location: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__(message)
        self.location = location


class InvalidSpec(Invalid):
    """A run spec (or an imported workload) cannot be simulated."""

    kind = "invalid_spec"


class IdempotencyConflict(Invalid):
    """The same Idempotency-Key was used before with a different request body."""

    kind = "idempotency_conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message, ("header", "Idempotency-Key"))


class IdPrefixNotFound(NotFound):
    """No run (study, job) the caller may see has an id starting with the given prefix."""

    def __init__(self, noun: str, prefix: str) -> None:
        super().__init__(f"no {noun} starts with {prefix}")


class AmbiguousIdPrefix(Invalid):
    """More than one run (study, job) the caller may see has an id starting with the prefix:
    `shown` are some of them, `count` how many there are."""

    kind = "ambiguous_id"

    def __init__(
        self, nouns: str, prefix: str, count: int, shown: list[str], location: tuple[str, ...]
    ) -> None:
        listed = ", ".join(shown) + (", ..." if count > len(shown) else "")
        super().__init__(f"ambiguous: {count} {nouns} start with {prefix} ({listed})", location)


class RunNotFound(NotFound):
    def __init__(self, run_id: object) -> None:
        super().__init__(f"run {run_id} does not exist")
        self.run_id = run_id


class RunNotCancellable(Conflict):
    def __init__(self, run_id: object, status: str) -> None:
        super().__init__(f"run {run_id} is already {status} and cannot be cancelled")
        self.run_id = run_id
        self.status = status


class RunNotDeletable(Conflict):
    def __init__(self, run_id: object, reason: str) -> None:
        super().__init__(f"run {run_id} cannot be deleted: {reason}")


class ScheduleNotFound(NotFound):
    """A run with no stored schedule for a policy; `reason` says why (services/runs.py)."""

    def __init__(self, run_id: object, policy: str, reason: str) -> None:
        super().__init__(f"run {run_id} has no schedule for policy {policy!r}: {reason}")


class ScheduleNotReproducible(Conflict):
    """A schedule recomputed on read differs from the one the run saw (its stored digest): the
    simulator changed since the run; `reason` says how (services/schedules.py). Never shown."""

    def __init__(self, run_id: object, policy: str, reason: str) -> None:
        super().__init__(f"run {run_id}'s schedule for policy {policy!r} cannot be shown: {reason}")


class StudyNotFound(NotFound):
    def __init__(self, study_id: object) -> None:
        super().__init__(f"study {study_id} does not exist")


class StudyNotCancellable(Conflict):
    def __init__(self, study_id: object, status: str) -> None:
        super().__init__(f"study {study_id} is already {status} and cannot be cancelled")


class StudyNotDeletable(Conflict):
    def __init__(self, study_id: object, status: str) -> None:
        super().__init__(
            f"study {study_id} is {status}: cancel it (POST .../cancel) before deleting it"
        )


class StudyNotReady(NotReady):
    """A study's statistics exist only once every run ended and it was aggregated."""

    def __init__(self, study_id: object, status: str, finished: int, total: int) -> None:
        super().__init__(
            f"study {study_id} has no statistics yet: it is {status}, {finished} of {total} "
            "runs ended"
        )


class RunNotReady(NotReady):
    """A run's results exist only once it succeeded."""

    def __init__(self, run_id: object, status: str, error: str | None) -> None:
        reason = f": {error}" if error else ""
        super().__init__(f"run {run_id} has no results, it is {status}{reason}")


class JobNotFound(NotFound):
    def __init__(self, job_id: object) -> None:
        super().__init__(f"retraining job {job_id} does not exist")


class VersionNotFound(NotFound):
    def __init__(self, version: int) -> None:
        super().__init__(f"model version {version} does not exist")


class ProfileNotFound(NotFound):
    def __init__(self, name: str, available: list[str]) -> None:
        known = ", ".join(available) or "none"
        super().__init__(f"no kernel profile is named {name!r} (shipped: {known})")
        self.name = name


class ProfileConflict(Conflict):
    """A profile of that name exists already: the caller's own, or a shipped one."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"kernel profile {name!r}: {reason}")
        self.name = name


class UnknownKey(Forbidden):
    """An API key that is not known, or was revoked."""


class AdminRequired(Forbidden):
    """Only an admin key may do this (shared state: the model, other tenants' keys)."""

    def __init__(self, action: str) -> None:
        super().__init__(f"only an admin API key may {action}")


class KeyNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no active API key is named {name!r}")


class KeyConflict(Conflict):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"API key {name!r}: {reason}")


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
