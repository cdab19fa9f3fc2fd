"""The domain's exceptions, mapped once to HTTP codes (api/errors.py) and once to Celery
retry / no-retry (workers/tasks.py)."""

from __future__ import annotations


class HmsError(Exception):
    """Base class of every error the domain raises on purpose."""


class InvalidSpec(HmsError):
    """A run spec (or an imported workload) cannot be simulated; retrying will not help."""


class RunNotFound(HmsError):
    def __init__(self, run_id: object) -> None:
        super().__init__(f"run {run_id} does not exist")
        self.run_id = run_id


class RunNotCancellable(HmsError):
    def __init__(self, run_id: object, status: str) -> None:
        super().__init__(f"run {run_id} is already {status} and cannot be cancelled")
        self.run_id = run_id
        self.status = status


class IdempotencyConflict(HmsError):
    """The same Idempotency-Key was used before with a different request body."""


class TransientStoreError(HmsError):
    """The database or the broker is unreachable right now; the operation may be retried."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail
