"""The life of work a worker executes, written once for runs, retraining jobs and studies.

- `send`: after the commit, send the work's message, then note when (`enqueued_at`). A message is
  never sent for an uncommitted row; if the broker is down the row stays unsent (`never_sent`),
  the recovery sweep or a replay of its submission sends it later, and the error says so.
- `claim`: lock the row, skip it if it already ended (a redelivered message must not redo it),
  fail it if its workers were lost `max_attempts` times, else begin one more attempt.
- `ProgressReporter`: throttled progress writes while the work is running; raises `Cancelled`
  once it no longer is, `OutOfTime` past an optional deadline.
- `finish` / `fail`: give running work its terminal status — only from running, so a second
  delivery, a cancel or a late failure report never overwrites how it ended.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from app.db import lifecycle as store
from app.db.models import FAILED, QUEUED, RUNNING, Attempted, Work, utcnow
from app.db.session import session_scope
from app.errors import ClaimLost, TransientStoreError
from app.services.ports import ProgressSink
from app.settings import get_settings

A = TypeVar("A", bound=Attempted)


class Cancelled(Exception):
    """The work stopped running while it executed (cancelled, or ended by another delivery)."""


class OutOfTime(Exception):
    """The work went past its deadline."""


def send(row: Work, send_message: Callable[[], None], kind: str) -> None:
    """Send the message of a committed row (`kind` names it in the error, e.g. "run"), then note
    when. Raises TransientStoreError, noting that the work is recorded, if the broker is down.

    The note is not waited for (an asynchronous commit, 1 ms instead of an fsync's 3.7 ms): if a
    database crash loses it, the row looks unsent and the recovery sweep sends it again, a second
    message for the same work that its claim and finish make harmless."""
    try:
        send_message()
    except TransientStoreError as exc:
        note = f"{kind} {row.id} is recorded and will be sent when the broker is back"
        raise TransientStoreError(exc.dependency, exc.detail, note) from exc
    with session_scope(durable=False) as session:
        store.mark_enqueued(session, type(row), [row.id])
    row.enqueued_at = utcnow()


class Submitted(Protocol):
    """Work a request created (a run, a study): a `Work` row with its request's digest."""

    @property
    def request_digest(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def enqueued_at(self) -> datetime | None: ...
    @property
    def ended(self) -> bool: ...


def never_sent(row: Submitted) -> bool:
    """Whether committed work still waits for its first message: it has not ended, no send was
    noted, and no worker claimed it (a claim, which makes work executed in attempts `running`,
    proves a message arrived; a study is `running` from the start and never claimed)."""
    if row.ended or row.enqueued_at is not None:
        return False
    return not (isinstance(row, Attempted) and row.status == RUNNING)


class Unclaimed(StrEnum):
    """Why claim() found nothing to do."""

    ENDED = "ended"  # it ended already (another delivery, a cancel)
    GAVE_UP = "gave up"  # failed now: the workers of its `max_attempts` claims were all lost


def claim(
    model: type[A],
    row_id: uuid.UUID,
    not_found: Callable[[uuid.UUID], Exception],
    worker: str | None = None,
    phase: str | None = None,
) -> A | Unclaimed:
    """Begin `worker`'s attempt at the work (the row records it, and `phase`, the one the work
    begins in: its first progress report need not be written) and return its row, or say why
    there is nothing to do: it already ended, or it was claimed `max_attempts` times before —
    each claim that did not end it lost its worker — and is failed now instead of being tried
    again.

    The claim is not waited for (an asynchronous commit): the work's finish, a durable commit,
    flushes it too, and if a database crash loses it first, that crash also broke the worker's
    connection, so the finish fails, the task is retried and claims again."""
    max_attempts = get_settings().max_attempts
    with session_scope(durable=False) as session:
        row = store.lock(session, model, row_id)
        if row is None:
            raise not_found(row_id)
        if row.ended:
            return Unclaimed.ENDED
        if row.attempts >= max_attempts:
            row.end(FAILED)
            row.record_error(
                f"gave up after {row.attempts} attempts: the worker running it was lost each time"
            )
            return Unclaimed.GAVE_UP
        row.begin_attempt(worker, phase)
        return row


def finish(
    model: type[A], row_id: uuid.UUID, status: str, record: Callable[[Session, A], None]
) -> bool:
    """End running work with `status`; `record(session, row)` fills in the rest of its row, and
    what the work produced, in the same transaction. False (and nothing written) if it was not
    running: it ended already (a cancel, another delivery of the same message). Its
    `finished_at` is stamped once what it produced is stored (a run's samples and observations
    take milliseconds), before the commit."""
    with session_scope() as session:
        row = store.lock_running(session, model, row_id)
        if row is None:
            return False
        record(session, row)
        row.end(status)
        return True


def fail(model: type[Attempted], row_id: uuid.UUID, error: str) -> bool:
    """Record that running work failed (once: no retry follows)."""
    return finish(model, row_id, FAILED, lambda _, row: row.record_error(error))


class ProgressReporter:
    """Throttles progress to one database write (and one sink call) per `progress_interval_s`,
    and stops the work by raising `Cancelled` once it is no longer running, `OutOfTime` once it
    is past `deadline` (a time.monotonic() value; None: none). Each write records the phase the
    work is in (the `stage` of the report); the first report of an attempt is always written, so
    the phase shows from the start — unless the claim wrote it (`reported_at`, the claim's
    time.monotonic()): then the first is as throttled as the others, and a short run writes
    none. Its writes also tell the recovery sweep the work is alive.

    A write is not waited for (an asynchronous commit, as the claim's), so that a short run's one
    durable commit is its finish (3.7 ms of fsync each here). A database crash that loses a report
    loses a number the next report or the finish writes again; that crash also breaks the
    worker's connection, so the next write fails and the task is retried."""

    def __init__(
        self,
        model: type[Attempted],
        row_id: uuid.UUID,
        sink: ProgressSink | None,
        deadline: float | None = None,
        reported_at: float | None = None,
    ) -> None:
        self.model = model
        self.row_id = row_id
        self.sink = sink
        self.interval_s = get_settings().progress_interval_s
        self.deadline = deadline
        self.last = reported_at  # when the last report was written (None: none yet)

    def __call__(self, progress: float, stage: str) -> None:
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise OutOfTime
        if self.last is not None and now - self.last < self.interval_s:
            return
        self.last = now
        progress = min(progress, 1.0)
        with session_scope(durable=False) as session:
            status = store.set_progress(session, self.model, self.row_id, progress, stage)
        if status == QUEUED:
            raise ClaimLost(self.row_id)
        if status != RUNNING:
            raise Cancelled
        if self.sink is not None:
            self.sink(progress, stage)
