"""Live streams woken by the database's change notifications (migration 0012's triggers,
app/db/notify.py, api/live.py), against the real database and the API under uvicorn.

The APIs here are configured so that a stream's reads can only come from what is under test: with
both fallback polls at an hour, a stream that shows a change was woken by its notification (or by
the listener's reconnection); with only the safety poll short, by the safety poll. No assertion
is timed: a stream that is never woken ends at its `timeout_s` without the event, and the test
fails."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, text

from api.main import app
from app.db import lifecycle as db_lifecycle
from app.db.models import Run
from app.db.notify import APPLICATION_NAME, ChangeListener
from app.db.session import session_scope
from app.errors import RunNotFound
from app.services import lifecycle
from app.settings import get_settings
from tests.conftest import TEAM_A_KEY
from tests.integration.test_api_events import TINY_SPEC, Sse, parse, succeed
from tests.processes import Api, wait_until

A = {"X-API-Key": TEAM_A_KEY}
HOUR = "3600"
#: Long enough for a loaded machine; a stream that was not woken ends after it.
STREAM_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def notified_only(servers) -> Iterator[Api]:
    """An API whose streams read only when notified: both fallback polls an hour."""
    process = Api(env={"HMS_LIVE_POLL_S": HOUR, "HMS_LIVE_SAFETY_POLL_S": HOUR})
    yield process
    process.stop()


@pytest.fixture(scope="module")
def safety_polled(servers) -> Iterator[Api]:
    """An API whose streams read when notified and every 0.5 s while the listener listens (and
    never while it does not)."""
    process = Api(env={"HMS_LIVE_POLL_S": HOUR, "HMS_LIVE_SAFETY_POLL_S": "0.5"})
    yield process
    process.stop()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app, headers=A) as client:
        yield client


def submit(client: httpx.Client | TestClient) -> uuid.UUID:
    response = client.post("/api/v1/runs", json=TINY_SPEC)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def set_progress(run_id: uuid.UUID, progress: float) -> None:
    with session_scope() as session:
        db_lifecycle.set_progress(session, Run, run_id, progress, "simulating greedy (1/1)")


def listeners(api: Api) -> list[int]:
    """The backend pids of `api`'s listening connection, once it has issued its LISTEN (none
    of another process, nor one that has just closed)."""
    pg_port = make_url(get_settings().require_database_url()).port
    connections = psutil.Process(api.pid).net_connections("tcp")
    ports = sorted(c.laddr.port for c in connections if c.raddr and c.raddr.port == pg_port)
    query = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
        "AND query LIKE 'LISTEN%' AND client_port = ANY(:ports)"
    )
    with session_scope() as session:
        return list(session.scalars(text(query), {"name": APPLICATION_NAME, "ports": ports}))


def states(http: httpx.Client, run_id: uuid.UUID) -> Iterator[Sse]:
    """The run's stream's states (keepalive comments skipped) until it ends."""
    path = f"/api/v1/runs/{run_id}/events"
    with http.stream("GET", path, params={"timeout_s": STREAM_TIMEOUT_S}) as response:
        assert response.status_code == 200
        for event in parse(response.iter_lines()):
            if isinstance(event, Sse):
                yield event


def progress_of(stream: Iterator[Sse]) -> tuple[str, float]:
    event = next(stream)
    return event.data["status"], event.data["progress"]


def test_a_change_is_announced_when_its_transaction_commits_and_not_before(client):
    first, second = submit(client), submit(client)
    for run_id in (first, second):
        lifecycle.claim(Run, run_id, RunNotFound)
    heard: queue.Queue[frozenset[str] | None] = queue.Queue()
    listener = ChangeListener(get_settings().require_database_url(), heard.put)
    listener.start()
    try:
        assert heard.get(timeout=30) is None  # connected: "anything may have changed"
        with session_scope() as uncommitted:
            db_lifecycle.set_progress(uncommitted, Run, first, 0.5, "simulating greedy (1/1)")
            set_progress(second, 0.5)  # committed while the first is not
            assert heard.get(timeout=30) == {str(second)}
        assert heard.get(timeout=30) == {str(first)}
    finally:
        listener.stop()


@contextmanager
def running_run_watched(api: Api) -> Iterator[tuple[uuid.UUID, Iterator[Sse]]]:
    """A running run and its stream from `api` (listening by then), its first state read."""
    wait_until(lambda: bool(listeners(api)), 60, "the API listening")
    with httpx.Client(base_url=api.url, headers=A, timeout=30) as http:
        run_id = submit(http)
        lifecycle.claim(Run, run_id, RunNotFound)
        stream = states(http, run_id)
        assert progress_of(stream) == ("running", 0.0)
        yield run_id, stream
        stream.close()


def test_a_stream_that_never_polls_shows_each_committed_change(notified_only):
    with running_run_watched(notified_only) as (run_id, stream):
        set_progress(run_id, 0.25)
        assert progress_of(stream) == ("running", 0.25)
        succeed(str(run_id))
        assert progress_of(stream) == ("succeeded", 1.0)


def test_after_its_connection_is_killed_the_listener_reconnects_and_streams_go_on(notified_only):
    with running_run_watched(notified_only) as (run_id, stream):
        (killed,) = listeners(notified_only)
        with session_scope() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})
        wait_until(lambda: listeners(notified_only) not in ([], [killed]), 60, "listening again")
        set_progress(run_id, 0.25)
        assert progress_of(stream) == ("running", 0.25)


def test_a_change_whose_notification_was_missed_shows_at_the_safety_poll(safety_polled):
    with running_run_watched(safety_polled) as (run_id, stream):
        with session_scope() as session:  # a change committed with no notification
            session.execute(text("ALTER TABLE runs DISABLE TRIGGER hms_announce_run_change"))
            db_lifecycle.set_progress(session, Run, run_id, 0.25, "simulating greedy (1/1)")
            session.execute(text("ALTER TABLE runs ENABLE TRIGGER hms_announce_run_change"))
        assert progress_of(stream) == ("running", 0.25)
