"""Server-Sent Events: a run's or a study's state, live (app/services/events.py decides what to
send; this module only speaks HTTP). A stream reads its row in the thread pool when the database
announces a change of it, or when its fallback poll is due (api/live.py); between reads it awaits
an `asyncio.Event`, so an open stream holds no thread."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api.deps import Caller, RunId, StudyId
from api.errors import AUTH, responses
from api.live import live_changes
from api.schemas import DeletedEventData, RunEventData, StudyEventData
from app.errors import TransientStoreError
from app.services import events

router = APIRouter(prefix="/api/v1", tags=["events"])

#: The longest a client may ask a stream to stay open; it reconnects with Last-Event-ID after.
MAX_TIMEOUT_S = 3600


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_STREAM_DOC = (
    "`text/event-stream`. Each state: `id: <int>`, `event: state`, `data: <one-line JSON>`, a "
    "blank line. The current state comes at once (unless `Last-Event-ID` shows the client has "
    "it), then one whenever what it shows changes; the server closes the stream right after a "
    'terminal state, after `event: deleted` (`data: {"id": ...}`) if it is deleted, or after '
    "`timeout_s`. A `: keepalive` comment line every 15 s of silence."
)


def _event_schema(state: type[BaseModel]) -> dict[str, Any]:
    """One event of the stream, as OpenAPI before 3.2 has a `text/event-stream` schema describe it:
    its fields as a parser of the stream reads them (every value a string). `data` is a string
    holding one line of JSON: `contentSchema` (OpenAPI 3.1, JSON Schema 2020-12) says which: the
    `state` (its fields as of this event), or, for `event: deleted`, the id of what was deleted."""
    content = {"anyOf": [state.model_json_schema(), DeletedEventData.model_json_schema()]}
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "id": {"type": "string", "description": "The state's version (an integer)."},
            "event": {"type": "string", "enum": ["state", "deleted"]},
            "data": {
                "type": "string",
                "description": "One line of JSON.",
                "contentMediaType": "application/json",
                "contentSchema": content,
            },
        },
    }


def _documented(state: type[BaseModel], data_fields: str) -> dict[int | str, dict[str, Any]]:
    header = {"schema": {"type": "string"}}
    return {
        200: {
            "description": f"{_STREAM_DOC} Data: {data_fields}.",
            "content": {"text/event-stream": {"schema": _event_schema(state)}},
            "headers": {"Cache-Control": header, "X-Accel-Buffering": header},
        },
        **_json_errors(*AUTH, 404, 503),
    }


def _json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses(...)`, its bodies documented as JSON (as `model`, FastAPI would give them this
    route's media type, but an error is answered as JSON before any stream starts)."""
    return {
        code: {
            "description": answer["description"],
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{answer['model'].__name__}"}
                }
            },
        }
        for code, answer in responses(*codes).items()
    }


LastEventId = Annotated[
    int,
    Header(
        alias="Last-Event-ID",
        ge=0,
        description="The id of the last event received: resume after it (nothing already seen "
        "is sent again). Event ids are positive: 0, like no header, means none seen.",
    ),
]
TimeoutS = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_TIMEOUT_S,
        description="Seconds after which the server closes the stream if it has not ended (a "
        "client reconnects with Last-Event-ID); 0: send the current state only.",
    ),
]


@router.get("/runs/{run_id}/events", response_class=EventStream, responses=_documented(
    RunEventData,
    "`id`, `status`, `progress` (0..1), `attempts`, `error`, `updated_at` (ISO 8601); event id: "
    "the run's `updated_at` in microseconds since the epoch; terminal: succeeded, failed, "
    "cancelled"
))  # fmt: skip
def run_events(
    run_id: RunId,
    tenant: Caller,
    last_event_id: LastEventId = 0,
    timeout_s: TimeoutS = 300,
) -> EventStream:
    """A run of yours, live: its status and progress as they change, until it ends."""
    return _stream(events.watch_run(tenant, run_id, last_event_id), timeout_s)


@router.get("/studies/{study_id}/events", response_class=EventStream, responses=_documented(
    StudyEventData,
    "`id`, `status`, `progress` (ended runs / all runs), `total_runs`, `finished_runs`, "
    "`counts` (runs by status), `updated_at` (ISO 8601: the newest change of the study or of a "
    "run's status); event id: that instant in microseconds since the epoch; terminal: "
    "succeeded, cancelled"
))  # fmt: skip
def study_events(
    study_id: StudyId,
    tenant: Caller,
    last_event_id: LastEventId = 0,
    timeout_s: TimeoutS = 300,
) -> EventStream:
    """A study of yours, live: its runs by status as they start and end, until it ends."""
    return _stream(events.watch_study(tenant, study_id, last_event_id), timeout_s)


def _stream(watch: events.Watch, timeout_s: float) -> EventStream:
    return EventStream(_lines(watch, timeout_s), headers=_HEADERS)


async def _lines(watch: events.Watch, timeout_s: float) -> AsyncIterator[str]:
    """The stream's text until the watch ends or `timeout_s` passes. A client that disconnects
    cancels this generator (Starlette listens for the disconnect while it streams). The watch
    reads its row when the database announces a change of it, or after the fallback poll
    (api/live.py); the event is cleared before each read, so a change committed during a read
    makes another."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    with live_changes.watching(watch.subject_id) as changed:
        while True:
            changed.clear()
            try:
                found = await run_in_threadpool(watch.poll)
            except TransientStoreError:
                found = []  # the database is away: keep the stream, read again at the next poll
            for event in found:
                yield _encode(event)
                quiet_since = time.monotonic()
            if watch.ended:
                return
            read_at = min(deadline, time.monotonic() + live_changes.fallback_s)
            while not changed.is_set() and (now := time.monotonic()) < read_at:
                if now - quiet_since >= events.KEEPALIVE_S:
                    yield ": keepalive\n\n"
                    quiet_since = now
                with suppress(TimeoutError):
                    wait_s = min(read_at, quiet_since + events.KEEPALIVE_S) - now
                    await asyncio.wait_for(changed.wait(), wait_s)
            if not changed.is_set() and time.monotonic() >= deadline:
                return  # no read at the deadline: the client reconnects and reads then


def _encode(event: events.Event) -> str:
    data = json.dumps(event.document, separators=(",", ":"))
    if isinstance(event, events.Deleted):
        return f"event: deleted\ndata: {data}\n\n"
    return f"id: {event.id}\nevent: state\ndata: {data}\n\n"
