"""Tenants: every /api/v1 endpoint needs a key, each key sees only its own work, admin keys see
all; keys are created, listed, revoked and rotated through the API and stored hashed. In-process
(TestClient) against the real database and broker; no worker runs, so runs stay queued."""

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import app
from app.db.session import session_scope
from app.services import studies
from tests.conftest import EXAMPLE_SPEC, TEAM_A_KEY, TEAM_B_KEY, TEST_API_KEY
from tests.fakes import RecordingQueue

ADMIN = {"X-API-Key": TEST_API_KEY}
A = {"X-API-Key": TEAM_A_KEY}
B = {"X-API-Key": TEAM_B_KEY}
STUDY = {
    "name": "tiny",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 20},
        "cluster": {"cpus": 2, "gpus": 1},
        "policies": ["greedy"],
    },
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 1,
}


@pytest.fixture
def client():
    with TestClient(app) as client:
        yield client


def _operations():
    """Every operation of the API's schema, with its path parameters filled in. Ids of nothing,
    and fixed: they name the tests, and pytest-xdist's workers must collect the same names."""
    ids = [uuid.UUID(int=n, version=4) for n in (1, 2, 3)]
    values: dict[str, object] = dict(zip(("run_id", "study_id", "job_id"), ids, strict=True))
    values |= {"version": 1, "name": "someone"}
    for path, methods in app.openapi()["paths"].items():
        for method in methods:
            yield method.upper(), re.sub(r"{(\w+)}", lambda m: str(values[m[1]]), path)


API_OPERATIONS = [op for op in _operations() if op[1].startswith("/api/v1/")]


def test_the_schema_has_operations_to_check():
    paths = {path for _, path in API_OPERATIONS}
    assert len(API_OPERATIONS) >= 20 and "/api/v1/keys" in paths and "/api/v1/runs" in paths


@pytest.mark.parametrize(("method", "path"), API_OPERATIONS)
def test_every_api_operation_refuses_a_missing_or_unknown_key(client, method, path):
    missing = client.request(method, path, json={})
    assert missing.status_code == 401, missing.text
    assert missing.headers["WWW-Authenticate"] == "ApiKey"
    unknown = client.request(method, path, json={}, headers={"X-API-Key": "hms_not-a-key"})
    assert unknown.status_code == 403 and unknown.json() == {"detail": "invalid API key"}


def test_health_and_docs_stay_open(client):
    for path in ("/health/live", "/health/ready", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def submit(client, key, **headers):
    response = client.post("/api/v1/runs", json=EXAMPLE_SPEC, headers={**key, **headers})
    assert response.status_code == 202, response.text
    return response.json()


def test_a_tenant_cannot_see_cancel_or_delete_another_tenants_run(client):
    mine = submit(client, A)
    assert mine["tenant"] == "team-a"
    path = f"/api/v1/runs/{mine['id']}"
    for method, suffix in [("GET", ""), ("GET", "/results"), ("POST", "/cancel"), ("DELETE", "")]:
        answer = client.request(method, path + suffix, headers=B)
        assert answer.status_code == 404, (method, suffix)
        assert answer.json()["detail"] == f"run {mine['id']} does not exist"  # not "forbidden"
    schedule = client.get(f"{path}/schedule", params={"policy": "greedy"}, headers=B)
    assert schedule.status_code == 404
    assert client.get("/api/v1/runs", headers=B).json()["total"] == 0
    assert client.get(path, headers=A).json()["status"] == "queued"  # untouched by B
    assert client.get("/api/v1/runs", headers=A).json()["total"] == 1


def test_idempotency_keys_are_per_tenant_and_admin_sees_every_tenant(client):
    a_run = submit(client, A, **{"Idempotency-Key": "nightly-1"})
    b_run = submit(client, B, **{"Idempotency-Key": "nightly-1"})  # same key, same body
    assert b_run["id"] != a_run["id"] and b_run["tenant"] == "team-b"
    other_body = {**EXAMPLE_SPEC, "seed": 99}
    b_other = client.post(
        "/api/v1/runs", json=other_body, headers={**B, "Idempotency-Key": "nightly-2"}
    )
    assert b_other.status_code == 202  # A never used nightly-2; B learns nothing about A
    replay = client.post(
        "/api/v1/runs", json=EXAMPLE_SPEC, headers={**A, "Idempotency-Key": "nightly-1"}
    )
    assert replay.json()["id"] == a_run["id"] and replay.headers["Idempotent-Replayed"] == "true"
    listing = client.get("/api/v1/runs", headers=ADMIN).json()
    assert {r["tenant"] for r in listing["items"]} == {"team-a", "team-b"}
    assert listing["total"] == 3
    assert client.get(f"/api/v1/runs/{a_run['id']}", headers=ADMIN).status_code == 200
    cancelled = client.post(f"/api/v1/runs/{a_run['id']}/cancel", headers=ADMIN)
    assert cancelled.json()["status"] == "cancelled"  # admin may act on any tenant's run
    assert client.get("/api/v1/runs", headers=A).json()["total"] == 1


def test_studies_are_owned_like_runs(client):
    study = client.post("/api/v1/studies", json=STUDY, headers=A).json()
    assert study["tenant"] == "team-a"
    studies.fan_out_study(uuid.UUID(study["id"]), RecordingQueue())  # creates the runs
    path = f"/api/v1/studies/{study['id']}"
    assert client.get(path, headers=B).status_code == 404
    assert client.post(f"{path}/cancel", headers=B).status_code == 404
    assert client.delete(path, headers=B).status_code == 404
    assert client.get(f"{path}/results", headers=B).status_code == 404
    assert client.get("/api/v1/studies", headers=B).json()["total"] == 0
    runs_of_b = client.get("/api/v1/runs", params={"study_id": study["id"]}, headers=B).json()
    assert runs_of_b["total"] == 0
    runs_of_a = client.get("/api/v1/runs", params={"study_id": study["id"]}, headers=A).json()
    assert runs_of_a["total"] == 2 and {r["tenant"] for r in runs_of_a["items"]} == {"team-a"}
    assert client.get("/api/v1/studies", headers=ADMIN).json()["total"] == 1


def test_keys_are_created_once_listed_without_the_key_and_stored_hashed(client):
    created = client.post("/api/v1/keys", json={"name": "team-c"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith("hms_") and len(key) > 40 and body["admin"] is False
    listed = client.get("/api/v1/keys", headers=ADMIN).json()
    assert "key" not in str(listed).replace("'key'", "")  # no key text in any entry
    by_name = {k["name"]: k for k in listed}
    assert (
        by_name["team-c"]["source"] == "database" and by_name["team-a"]["source"] == "environment"
    )
    assert by_name["tests"]["admin"] is True
    with session_scope() as session:
        stored = session.execute(text("SELECT * FROM api_keys")).mappings().all()
    assert len(stored) == 1 and key not in str(dict(stored[0]))
    run = submit(client, {"X-API-Key": key})
    assert run["tenant"] == "team-c"
    again = client.post("/api/v1/keys", json={"name": "team-c"}, headers=ADMIN)
    assert again.status_code == 409 and "revoke it first" in again.json()["detail"]
    env_name = client.post("/api/v1/keys", json={"name": "team-a"}, headers=ADMIN)
    assert env_name.status_code == 409 and "HMS_API_KEYS" in env_name.json()["detail"]
    bad = client.post("/api/v1/keys", json={"name": "no spaces"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "name"]


def test_only_admin_keys_manage_keys(client):
    for method, path in [("POST", "/api/v1/keys"), ("GET", "/api/v1/keys")]:
        answer = client.request(method, path, json={"name": "x"}, headers=A)
        assert answer.status_code == 403 and "admin" in answer.json()["detail"]
    assert client.post("/api/v1/keys/team-b/revoke", headers=A).status_code == 403


def test_a_revoked_key_is_refused_at_once_and_a_rotated_key_keeps_the_work(client):
    old = client.post("/api/v1/keys", json={"name": "team-d"}, headers=ADMIN).json()["key"]
    run = submit(client, {"X-API-Key": old})
    assert client.post("/api/v1/keys/team-d/revoke", headers=ADMIN).status_code == 204
    refused = client.get("/api/v1/runs", headers={"X-API-Key": old})
    assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
    assert client.post("/api/v1/keys/team-d/revoke", headers=ADMIN).status_code == 404
    env_key = client.post("/api/v1/keys/team-a/revoke", headers=ADMIN)
    assert env_key.status_code == 409 and "HMS_API_KEYS" in env_key.json()["detail"]
    new = client.post("/api/v1/keys", json={"name": "team-d"}, headers=ADMIN).json()["key"]
    assert new != old
    assert client.get(f"/api/v1/runs/{run['id']}", headers={"X-API-Key": new}).status_code == 200
    listed = [k for k in client.get("/api/v1/keys", headers=ADMIN).json() if k["name"] == "team-d"]
    assert [k["revoked_at"] is None for k in listed] == [True, False]  # active first


def test_the_dashboards_cookie_is_a_key_too(client):
    run = submit(client, A)
    client.cookies.set("hms_key", TEAM_A_KEY)
    assert client.get(f"/api/v1/runs/{run['id']}").status_code == 200
    client.cookies.set("hms_key", TEAM_B_KEY)  # another tenant's cookie sees nothing of A's
    assert client.get(f"/api/v1/runs/{run['id']}").status_code == 404
    client.cookies.set("hms_key", "hms_not-a-key")
    assert client.get("/api/v1/runs").status_code == 403
