"""The Server-Sent Events streams of runs and studies, against the API under uvicorn (streamed
with httpx) and in-process (TestClient, for streams that end by themselves), the real database
and broker. No worker runs: the tests change the rows through the services themselves, in
lockstep with the stream (read an event, change the row, read the next), so each state is seen
whatever the machine's speed."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from api.main import app
from app.db import lifecycle as db_lifecycle
from app.db import runs as run_store
from app.db.models import Run, RunStatus
from app.db.session import session_scope
from app.errors import RunNotFound
from app.services import events, lifecycle, runs, studies
from tests.conftest import ADMIN, TEAM_A_KEY, TEAM_B_KEY
from tests.fakes import RecordingQueue

A = {"X-API-Key": TEAM_A_KEY}
B = {"X-API-Key": TEAM_B_KEY}
TINY_SPEC = {
    "workload": {"kind": "synthetic", "num_tasks": 40, "seed": 1},
    "cluster": {"cpus": 2, "gpus": 1},
    "policies": ["greedy", "oracle"],
}
STUDY = {
    "name": "events",
    "base": TINY_SPEC,
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 1,
}


@dataclass
class Sse:
    name: str
    id: int | None
    data: dict


def parse(lines: Iterator[str]) -> Iterator[Sse | str]:
    """Events of an SSE body, in order; a comment line comes as its text."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            yield line
        elif line:
            key, _, value = line.partition(": ")
            fields[key] = value
        elif fields:
            event_id = int(fields["id"]) if "id" in fields else None
            yield Sse(fields["event"], event_id, json.loads(fields["data"]))
            fields = {}


@pytest.fixture
def http(api):
    with httpx.Client(base_url=api.url, headers=A, timeout=30) as client:
        yield client


@pytest.fixture
def client():
    with TestClient(app, headers=A) as client:
        yield client


def submit(client, body=TINY_SPEC, path="/api/v1/runs") -> str:
    response = client.post(path, json=body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def set_progress(run_id: str, progress: float, phase: str = "simulating heft (1/1)") -> None:
    with session_scope() as session:
        db_lifecycle.set_progress(session, Run, uuid.UUID(run_id), progress, phase)


def succeed(run_id: str) -> None:
    def record(_, run: Run) -> None:  # as runs.execute_run records it
        run.progress, run.phase = 1.0, None

    assert lifecycle.finish(Run, uuid.UUID(run_id), RunStatus.SUCCEEDED, record)


def test_a_run_streams_each_change_in_order_and_the_stream_ends_after_succeeded(http):
    run_id = submit(http)
    changes = iter(
        [
            lambda: lifecycle.claim(Run, uuid.UUID(run_id), RunNotFound),
            lambda: set_progress(run_id, 0.25),
            lambda: set_progress(run_id, 0.25, "computing metrics"),  # a new phase is news
            lambda: set_progress(run_id, 0.5),
            lambda: succeed(run_id),
        ]
    )
    seen: list[Sse] = []
    with http.stream("GET", f"/api/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        for event in parse(response.iter_lines()):
            assert isinstance(event, Sse)
            seen.append(event)
            next(changes, lambda: None)()  # the next change, once this state was received
    assert [(e.name, e.data["status"], e.data["progress"], e.data["phase"]) for e in seen] == [
        ("state", "queued", 0.0, None),
        ("state", "running", 0.0, None),
        ("state", "running", 0.25, "simulating heft (1/1)"),
        ("state", "running", 0.25, "computing metrics"),
        ("state", "running", 0.5, "simulating heft (1/1)"),
        ("state", "succeeded", 1.0, None),
    ]
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids))  # strictly growing
    last = seen[-1].data
    assert set(last) == {"id", "status", "progress", "phase", "attempts", "error", "updated_at"}
    assert (last["id"], last["attempts"], last["error"]) == (run_id, 1, None)
    run = http.get(f"/api/v1/runs/{run_id}").json()
    assert last["updated_at"] == run["updated_at"].replace("Z", "+00:00")


def test_a_run_executed_meanwhile_streams_to_its_terminal_state(http):
    run_id = submit(http, {**TINY_SPEC, "workload": {"kind": "synthetic", "num_tasks": 20_000}})
    with http.stream("GET", f"/api/v1/runs/{run_id}/events") as response:
        lines = response.iter_lines()
        first = next(parse(lines))
        worker = threading.Thread(target=runs.execute_run, args=(uuid.UUID(run_id),))
        worker.start()
        rest = list(parse(lines))
    worker.join()
    seen = [first, *rest]
    statuses = [e.data["status"] for e in seen if isinstance(e, Sse)]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    assert statuses.count("succeeded") == 1 and "queued" not in statuses[1:]
    progress = [e.data["progress"] for e in seen if isinstance(e, Sse)]
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_resuming_with_last_event_id_sends_only_what_is_newer(http, client):
    run_id = submit(http)
    path = f"/api/v1/runs/{run_id}/events"
    queued = next(parse(client.get(path, params={"timeout_s": 0}).iter_lines()))
    assert isinstance(queued, Sse)
    resume = {"Last-Event-ID": str(queued.id)}
    # Nothing newer: the stream stays silent until its timeout.
    assert client.get(path, params={"timeout_s": 0.6}, headers=resume).text == ""
    lifecycle.claim(Run, uuid.UUID(run_id), RunNotFound)
    with http.stream("GET", path, headers=resume) as response:
        lines = response.iter_lines()
        running = next(parse(lines))
        assert isinstance(running, Sse) and running.data["status"] == "running"
        assert running.id > queued.id
        succeed(run_id)
        (ended,) = list(parse(lines))
    assert isinstance(ended, Sse) and ended.data["status"] == "succeeded"
    # An ended run: its terminal state once, then the end; nothing if the client has it.
    again = list(parse(client.get(path).iter_lines()))
    assert [(e.id, e.data["status"]) for e in again if isinstance(e, Sse)] == [
        (ended.id, "succeeded")
    ]
    assert list(parse(client.get(path, headers={"Last-Event-ID": str(queued.id)}).iter_lines()))
    assert client.get(path, headers={"Last-Event-ID": str(ended.id)}).text == ""


def test_another_tenants_or_an_unknown_id_is_a_404_and_no_key_a_401(client):
    run_id = submit(client)
    study_id = submit(client, STUDY, "/api/v1/studies")
    for path in (f"/api/v1/runs/{run_id}/events", f"/api/v1/studies/{study_id}/events"):
        refused = client.get(path, headers=B)
        assert refused.status_code == 404
        assert refused.headers["content-type"] == "application/json"
        assert client.get(path, headers={"X-API-Key": ""}).status_code == 401
        assert client.get(path, params={"timeout_s": 0}).status_code == 200
    assert client.get(f"/api/v1/runs/{uuid.uuid4()}/events").status_code == 404
    assert client.get(f"/api/v1/studies/{uuid.uuid4()}/events").status_code == 404


def test_a_study_streams_its_runs_counts_until_it_succeeds(http):
    study_id = submit(http, STUDY, "/api/v1/studies")
    studies.fan_out_study(uuid.UUID(study_id), RecordingQueue())  # a worker's part
    study_runs, _ = runs.list_runs(ADMIN, None, 10, 0, uuid.UUID(study_id))
    pending = iter([run.id for run in study_runs])
    seen: list[Sse] = []
    with http.stream("GET", f"/api/v1/studies/{study_id}/events") as response:
        for event in parse(response.iter_lines()):
            assert isinstance(event, Sse)
            seen.append(event)
            # The next run once none is running (a stream woken by each commit shows a run
            # running, between its start and its end).
            if "running" not in event.data["counts"] and (run_id := next(pending, None)):
                runs.execute_run(run_id)
    documents = [e.data for e in seen]
    assert documents[0]["counts"] == {"queued": 2} and documents[0]["status"] == "running"
    assert set(documents[0]) == {
        "id", "status", "progress", "total_runs", "finished_runs", "counts", "updated_at"
    }  # fmt: skip
    assert [d["finished_runs"] for d in documents] == sorted(d["finished_runs"] for d in documents)
    assert documents[-1] == {
        **documents[-1],
        "status": "succeeded",
        "progress": 1.0,
        "total_runs": 2,
        "finished_runs": 2,
        "counts": {"succeeded": 2},
    }
    assert [e.id for e in seen] == sorted({e.id for e in seen})


def test_a_run_deleted_while_streamed_ends_its_stream_with_deleted(http):
    run_id = submit(http)
    with http.stream("GET", f"/api/v1/runs/{run_id}/events") as response:
        lines = response.iter_lines()
        assert next(parse(lines)).data["status"] == "queued"
        with session_scope() as session:  # a purge: the services delete only ended runs
            run_store.delete_runs(session, [uuid.UUID(run_id)])
        rest = list(parse(lines))
    assert [(e.name, e.id, e.data) for e in rest if isinstance(e, Sse)] == [
        ("deleted", None, {"id": run_id})
    ]


def test_a_silent_stream_sends_keepalive_comments(client, monkeypatch):
    monkeypatch.setattr(events, "KEEPALIVE_S", 0.2)
    run_id = submit(client)
    body = list(parse(client.get(f"/api/v1/runs/{run_id}/events?timeout_s=1").iter_lines()))
    assert isinstance(body[0], Sse) and ": keepalive" in body[1:]


def documented_data(client, path: str) -> jsonschema_rs.Draft202012Validator:
    """The schema the OpenAPI document gives an event's `data` (a string of JSON) of `path`."""
    operation = client.get("/openapi.json").json()["paths"][path]["get"]
    event = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
    data = event["properties"]["data"]
    assert data["type"] == "string" and data["contentMediaType"] == "application/json"
    return jsonschema_rs.Draft202012Validator(data["contentSchema"], validate_formats=True)


def test_every_event_data_is_what_the_openapi_document_says(client):
    """The document said `data` was any string; it is JSON of a documented shape."""
    run_schema = documented_data(client, "/api/v1/runs/{run_id}/events")
    study_schema = documented_data(client, "/api/v1/studies/{study_id}/events")
    run_id = submit(client)
    study_id = submit(client, STUDY, "/api/v1/studies")
    for schema, path in ((run_schema, f"runs/{run_id}"), (study_schema, f"studies/{study_id}")):
        text = client.get(f"/api/v1/{path}/events", params={"timeout_s": 0}).text
        (state,) = [event for event in parse(iter(text.splitlines())) if isinstance(event, Sse)]
        schema.validate(state.data)
        schema.validate({"id": run_id})  # an `event: deleted`
        assert not schema.is_valid({**state.data, "undocumented": 1})
    assert not run_schema.is_valid({"id": run_id, "status": "queued"})
