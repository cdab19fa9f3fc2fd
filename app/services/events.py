"""The live state of a run or a study, as events: what the Server-Sent Events endpoints stream.

The source is the database: a worker writes a run's progress to its row at most every
`HMS_PROGRESS_INTERVAL_S` (0.5 s) and commits each status change on the row. A `Watch` reads the
row (a primary-key lookup; for a study, its row and its runs counted by status) when the API is
told the row changed, and every fallback poll (api/live.py): migration 0012's triggers NOTIFY the
changed ids in the writing transaction, so an event follows its commit within milliseconds and
nothing uncommitted is announced. No broker pub/sub: a notification only says "read again", and a
reconnecting client reads the same truth as `GET /api/v1/runs/{id}`.

Event ids let a client resume (`Last-Event-ID`): they grow whenever what a state shows changes.
- a run's: its row's `updated_at` in integer microseconds since the epoch (every write to the row
  sets it);
- a study's: the newest of the study row's `updated_at` and its runs' `started_at` and
  `finished_at`, in microseconds: it grows when the study's status changes or one of its runs
  starts or ends, i.e. exactly when its counts or progress can change (a running run's progress
  writes do not move it).
Within one stream ids only grow: a state that changed without a newer timestamp (clocks of two
hosts a little apart) gets the previous id + 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.db import runs as run_store
from app.db import studies as study_store
from app.db.models import Run, RunStatus, Study, StudyStatus
from app.db.session import session_scope
from app.errors import RunNotFound, StudyNotFound
from app.services.studies import StudyView
from app.tenancy import Tenant

#: Seconds of silence after which a stream sends a comment line, so proxies keep it open.
KEEPALIVE_S = 15.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class State:
    """What a run or a study shows now: `document` is the event's data, `id` its event id."""

    id: int
    document: dict[str, Any]
    terminal: bool


@dataclass(frozen=True)
class Deleted:
    """The watched run or study is gone (deleted while it was watched)."""

    subject_id: uuid.UUID

    @property
    def document(self) -> dict[str, Any]:
        return {"id": str(self.subject_id)}


Event = State | Deleted


def micros(moment: datetime) -> int:
    """Integer microseconds since the epoch (exact, no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def run_state(run: Run) -> State:
    document = {
        "id": str(run.id),
        "status": run.status,
        "progress": run.progress,
        "phase": run.phase,
        "attempts": run.attempts,
        "error": run.error,
        "updated_at": run.updated_at.isoformat(),
    }
    return State(micros(run.updated_at), document, RunStatus(run.status).is_terminal)


def study_state(view: StudyView, last_change: datetime) -> State:
    """`last_change`: the newest of the study's `updated_at` and its runs' start and end times;
    the document's `updated_at` shows it."""
    study = view.study
    document = {
        "id": str(study.id),
        "status": study.status,
        "progress": view.progress,
        "total_runs": study.total_runs,
        "finished_runs": view.finished_runs,
        "counts": view.counts,
        "updated_at": last_change.isoformat(),
    }
    return State(micros(last_change), document, StudyStatus(study.status).is_terminal)


def shows_news(shown: State, current: State) -> bool:
    """Whether `current` shows something `shown` did not (`updated_at` alone is no news)."""

    def strip(state: State) -> dict[str, Any]:
        return {k: v for k, v in state.document.items() if k != "updated_at"}

    return strip(current) != strip(shown)


class Watch:
    """Follows one run or study for one client: each `poll` reads it once and returns the events
    to send now (none, a state, or `Deleted`); `ended` once a terminal state or `Deleted` was
    returned, or when the client already had the terminal state (`last_event_id`)."""

    def __init__(
        self,
        subject_id: uuid.UUID,
        read: Callable[[], State | None],
        first: State,
        last_event_id: int | None,
    ) -> None:
        self.subject_id = subject_id
        self._read = read
        self._pending: State | None = first  # read already, to answer 404 before the stream
        self._shown: State | None = None
        self._last_id = -1 if last_event_id is None else last_event_id
        self.ended = False

    def poll(self) -> list[Event]:
        if self.ended:
            return []
        state, self._pending = self._pending or self._read(), None
        if state is None:
            self.ended = True
            return [Deleted(self.subject_id)]
        if self._shown is None and state.id <= self._last_id:
            # Resuming: the client had this state (or a newer one); send only what follows.
            self._shown, self.ended = state, state.terminal
            return []
        if self._shown is not None and not shows_news(self._shown, state):
            return []
        if state.id <= self._last_id:
            state = replace(state, id=self._last_id + 1)
        self._shown, self._last_id, self.ended = state, state.id, state.terminal
        return [state]


def watch_run(tenant: Tenant, run_id: uuid.UUID, last_event_id: int | None = None) -> Watch:
    """A Watch of the tenant's run; RunNotFound (before any event) if it may not see it."""

    def read() -> State | None:
        with session_scope() as session:
            run = run_store.get_run(session, run_id, tenant=tenant)
            return None if run is None else run_state(run)

    first = read()
    if first is None:
        raise RunNotFound(run_id)
    return Watch(run_id, read, first, last_event_id)


def watch_study(tenant: Tenant, study_id: uuid.UUID, last_event_id: int | None = None) -> Watch:
    """A Watch of the tenant's study; StudyNotFound (before any event) if it may not see it."""

    def read() -> State | None:
        with session_scope() as session:
            study = study_store.get_study(session, study_id, tenant=tenant)
            return None if study is None else _study_state(session, study)

    first = read()
    if first is None:
        raise StudyNotFound(study_id)
    return Watch(study_id, read, first, last_event_id)


def _study_state(session: Any, study: Study) -> State:
    """The study with its runs counted by status, in one query beside the row's lookup."""
    rows = session.execute(
        select(Run.status, func.count(), func.max(Run.started_at), func.max(Run.finished_at))
        .where(Run.study_id == study.id)
        .group_by(Run.status)
    ).all()
    moments = [study.updated_at, *(m for row in rows for m in row[2:] if m is not None)]
    counts = {status: count for status, count, *_ in rows}
    return study_state(StudyView(study, counts), max(moments))
