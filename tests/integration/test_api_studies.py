"""/api/v1/studies in-process (TestClient) against the real database and broker. Runs are
executed directly (no worker), so the study's life is driven step by step."""

import csv
import io
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import app
from app.db.models import Run
from app.db.session import session_scope
from app.services import runs, studies
from tests.conftest import TEST_API_KEY
from tests.fakes import RecordingQueue

AUTH = {"X-API-Key": TEST_API_KEY}
STUDY = {
    "name": "gpus",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 40},
        "cluster": {"cpus": 2, "gpus": 1},
        "policies": ["greedy", "oracle"],
    },
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 2,
}


@pytest.fixture
def client():
    """Sends the admin test key unless a request says otherwise."""
    with TestClient(app, headers=AUTH) as client:
        yield client


def post(client, body=STUDY, **headers):
    return client.post("/api/v1/studies", json=body, headers={**AUTH, **headers})


def fan_out(study_id):
    """What the study's fan-out message does on a worker: create and send its runs."""
    return studies.fan_out_study(uuid.UUID(study_id), RecordingQueue())


def run_all(study_id):
    fan_out(study_id)
    with session_scope() as session:
        ids = session.scalars(select(Run.id).where(Run.study_id == study_id)).all()
    for run_id in ids:
        runs.execute_run(run_id)


def test_a_study_is_accepted_listed_run_and_its_statistics_served(client):
    response = post(client, **{"Idempotency-Key": "s1"})
    assert response.status_code == 202, response.text
    study = response.json()
    assert response.headers["Location"] == f"/api/v1/studies/{study['id']}"
    assert (study["total_runs"], study["progress"], study["counts"]) == (4, 0.0, {"queued": 4})
    assert study["runs_created"] == 0  # the fan-out creates them
    again = post(client, **{"Idempotency-Key": "s1"})
    assert again.json()["id"] == study["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert fan_out(study["id"]) == 4
    assert client.get(f"/api/v1/studies/{study['id']}").json()["runs_created"] == 4
    page = client.get("/api/v1/runs", params={"study_id": study["id"], "limit": 10}).json()
    assert page["total"] == 4 and {r["study_id"] for r in page["items"]} == {study["id"]}
    assert client.get(f"/api/v1/studies/{study['id']}/results").status_code == 409
    run_all(study["id"])
    done = client.get(f"/api/v1/studies/{study['id']}").json()
    assert (done["status"], done["progress"], done["counts"]) == (
        "succeeded",
        1.0,
        {"succeeded": 4},
    )
    results = client.get(f"/api/v1/studies/{study['id']}/results").json()
    cells = results["statistics"]["cells"]
    assert [c["values"] for c in cells] == [{"cluster.gpus": 1}, {"cluster.gpus": 2}]
    assert all(c["best"] == "oracle" and c["runs"]["succeeded"] == 2 for c in cells)
    text = client.get(f"/api/v1/studies/{study['id']}/results", params={"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["cluster.gpus"] for row in rows} == {"1", "2"}
    assert {row["policy"] for row in rows} == {"greedy", "oracle"}
    assert client.get("/api/v1/studies").json()["total"] == 1


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"grid": {"cluster.gpuz": [1]}}, ["body", "grid", "cluster.gpuz"]),
        ({"grid": {"workload.load": [0.5, -1]}}, ["body", "grid", "workload.load"]),
        ({"grid": {"seed": [1, 2]}}, ["body", "grid"]),
        ({"repetitions": 0}, ["body", "repetitions"]),
        ({"base": {"policies": ["greedy"]}}, ["body", "base", "workload"]),
    ],
)
def test_a_bad_grid_key_or_value_is_a_422_naming_it(client, change, location):
    response = post(client, {**STUDY, **change})
    assert response.status_code == 422
    assert location in [error["loc"] for error in response.json()["detail"]], response.json()


def test_more_than_100000_runs_is_a_422_naming_the_limit_and_repetitions(client):
    big = {**STUDY, "grid": {"cluster.gpus": list(range(1, 101))}, "repetitions": 1001}
    response = post(client, big)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "repetitions"]
    assert "100100 runs" in error["msg"] and "limit of 100000 (MAX_STUDY_RUNS)" in error["msg"]


def test_more_result_rows_than_the_limit_is_a_422_naming_it(client):
    """10 cells x 10,000 repetitions x 11 policies = 1,100,000 result rows > 1,000,000."""
    policies = ["greedy", "heft", "cpop", "peft", "met", "mct", "olb", "minmin", "maxmin",
                "sufferage", "round_robin"]  # fmt: skip
    base = {**STUDY["base"], "workload": {"kind": "synthetic", "num_tasks": 5}}
    grid = {"workload.load": [0.1 * i for i in range(1, 11)]}
    body = {**STUDY, "base": {**base, "policies": policies}, "grid": grid, "repetitions": 10_000}
    response = post(client, body)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "repetitions"] and "MAX_STUDY_RESULTS" in error["msg"]
    assert client.get("/api/v1/studies").json()["total"] == 0  # nothing was recorded


def test_a_study_of_20000_runs_is_accepted_in_one_request_and_fanned_out_in_batches(client):
    body = {**STUDY, "grid": {"workload.load": [0.5, 0.9]}, "repetitions": 10_000}
    response = post(client, body)
    assert response.status_code == 202, response.text
    study = response.json()
    assert (study["total_runs"], study["counts"]) == (20_000, {"queued": 20_000})
    queue = RecordingQueue()
    assert studies.fan_out_study(uuid.UUID(study["id"]), queue) == 20_000
    assert len(set(queue.runs)) == 20_000
    with session_scope() as session:
        unsent = select(Run.id).where(Run.study_id == study["id"], Run.enqueued_at.is_(None))
        assert session.scalars(unsent).first() is None  # every batch was marked sent
        cells = session.execute(
            select(Run.study_cell, func.count(), func.max(Run.study_repetition))
            .where(Run.study_id == study["id"])
            .group_by(Run.study_cell)
            .order_by(Run.study_cell)
        ).all()
    assert [tuple(row) for row in cells] == [(0, 10_000, 9_999), (1, 10_000, 9_999)]


def test_cancel_needs_a_key_cancels_the_rest_and_is_409_once_ended(client):
    study = post(client).json()
    path = f"/api/v1/studies/{study['id']}/cancel"
    assert client.post(path, headers={"X-API-Key": ""}).status_code == 401
    cancelled = client.post(path).json()
    assert (cancelled["status"], cancelled["counts"]) == ("cancelled", {"cancelled": 4})
    assert client.post(path).status_code == 409
    assert client.get("/api/v1/studies/00000000-0000-0000-0000-000000000000").status_code == 404


def test_delete_refuses_a_running_study_and_removes_an_ended_one_with_its_runs(client):
    study = post(client).json()
    path = f"/api/v1/studies/{study['id']}"
    refused = client.delete(path)
    assert refused.status_code == 409 and "cancel it" in refused.json()["detail"]
    run_all(study["id"])
    assert client.get(path).json()["status"] == "succeeded"
    a_run = client.get("/api/v1/runs", params={"study_id": study["id"]}).json()["items"][0]
    alone = client.delete(f"/api/v1/runs/{a_run['id']}")  # a study's run goes with its study
    assert alone.status_code == 409 and study["id"] in alone.json()["detail"]
    deleted = client.delete(path)
    assert deleted.status_code == 202
    assert deleted.json() == {
        "id": study["id"],
        "status": "deleting",
        "runs": 4,
        "detail": "study deleted; its 4 runs are being removed in the background",
    }
    assert client.get(path).status_code == 404  # hidden at once
    assert client.get("/api/v1/studies").json()["total"] == 0
    assert client.delete(path).status_code == 404  # a repeated delete
    studies.purge_study(uuid.UUID(study["id"]))  # what the worker's task does (no worker here)
    assert client.get(f"/api/v1/runs/{a_run['id']}").status_code == 404
    with session_scope() as session:
        assert session.scalars(select(Run.id).where(Run.study_id == study["id"])).all() == []
