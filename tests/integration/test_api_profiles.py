"""/api/v1/profiles: a tenant uploads kernel profiles, lists the shipped ones and its own, reads
one whole; another tenant's is a 404; an invalid one is a 422 naming the field. In-process
(TestClient) against the real database."""

import copy
import json
import uuid
from importlib import resources

import pytest
from fastapi.testclient import TestClient

from api.main import app
from app.profilespec import shipped_profile_names
from app.services import runs
from tests.conftest import TEAM_A_KEY, TEAM_B_KEY, TEST_API_KEY

ADMIN = {"X-API-Key": TEST_API_KEY}
A = {"X-API-Key": TEAM_A_KEY}
B = {"X-API-Key": TEAM_B_KEY}
SHIPPED = "v100-skylake-mcsweeney2020"


def shipped_document() -> dict:
    text = resources.files("app.profiles").joinpath(f"{SHIPPED}.json").read_text()
    return json.loads(text)


def renamed(name: str) -> dict:
    return {**shipped_document(), "name": name}


@pytest.fixture
def client():
    with TestClient(app) as client:
        yield client


def upload(client, key, document):
    return client.post("/api/v1/profiles", json=document, headers=key)


def test_an_uploaded_profile_is_listed_and_read_back_whole(client):
    answer = upload(client, A, renamed("lab-v100"))
    assert answer.status_code == 201, answer.text
    assert answer.headers["Location"] == "/api/v1/profiles/lab-v100"
    summary = answer.json()
    assert summary["name"] == "lab-v100" and summary["tenant"] == "team-a"
    assert not summary["shipped"] and summary["created_at"]
    assert summary["kernels"] == ["gemm", "potrf", "syrk", "trsm"]
    assert summary["devices"] == ["cpu", "gpu"]
    assert (summary["min_size"], summary["max_size"], summary["timings"]) == (32, 1024, 48)
    assert (summary["source"], summary["date"]) == ("published", "2020")

    listed = client.get("/api/v1/profiles", headers=A).json()
    assert [(p["name"], p["shipped"], p["tenant"]) for p in listed] == [
        *((name, True, None) for name in shipped_profile_names()),
        ("lab-v100", False, "team-a"),
    ]
    assert listed[-1] == summary

    whole = client.get("/api/v1/profiles/lab-v100", headers=A).json()
    assert {k: v for k, v in whole.items() if k != "document"} == summary
    assert whole["document"] == renamed("lab-v100")


def test_shipped_profiles_are_readable_by_every_tenant(client):
    for key in (A, B, ADMIN):
        whole = client.get(f"/api/v1/profiles/{SHIPPED}", headers=key)
        assert whole.status_code == 200
        assert whole.json()["shipped"] and whole.json()["tenant"] is None
        assert whole.json()["document"] == shipped_document()


def test_another_tenant_neither_sees_nor_reads_a_profile_but_an_admin_does(client):
    assert upload(client, A, renamed("lab-v100")).status_code == 201
    listed = [p["name"] for p in client.get("/api/v1/profiles", headers=B).json()]
    assert listed == shipped_profile_names()
    missing = client.get("/api/v1/profiles/lab-v100", headers=B)
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("no kernel profile is named 'lab-v100'")
    assert client.get("/api/v1/profiles/nothing-here", headers=A).status_code == 404

    assert "lab-v100" in [p["name"] for p in client.get("/api/v1/profiles", headers=ADMIN).json()]
    read = client.get("/api/v1/profiles/lab-v100", headers=ADMIN)
    assert read.status_code == 200 and read.json()["tenant"] == "team-a"


def test_two_tenants_may_use_the_same_name_and_each_reads_its_own(client):
    theirs = renamed("lab")
    theirs["description"] = "team b's"
    assert upload(client, A, renamed("lab")).status_code == 201
    assert upload(client, B, theirs).status_code == 201
    assert client.get("/api/v1/profiles/lab", headers=A).json()["tenant"] == "team-a"
    read = client.get("/api/v1/profiles/lab", headers=B).json()
    assert read["tenant"] == "team-b" and read["description"] == "team b's"


def test_a_second_upload_of_a_name_or_a_shipped_name_is_a_conflict(client):
    assert upload(client, A, renamed("lab-v100")).status_code == 201
    again = upload(client, A, renamed("lab-v100"))
    assert again.status_code == 409
    assert "you have a profile of this name already" in again.json()["detail"]
    shipped = upload(client, A, shipped_document())
    assert shipped.status_code == 409
    assert "a shipped profile has this name" in shipped.json()["detail"]


def test_an_invalid_profile_is_a_422_naming_the_field(client):
    document = renamed("bad")
    document["timings"][3]["device"] = "tpu"
    answer = upload(client, A, document)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "timings", 3, "device"]
    assert "tpu" in error["msg"]

    negative = copy.deepcopy(renamed("bad"))
    negative["timings"][0]["mean_s"] = -1
    [error] = upload(client, A, negative).json()["detail"]
    assert error["loc"] == ["body", "timings", 0, "mean_s"]
    assert client.get("/api/v1/profiles/bad", headers=A).status_code == 404


def test_profiles_need_a_key(client):
    assert client.post("/api/v1/profiles", json=renamed("x")).status_code == 401
    assert client.get("/api/v1/profiles").status_code == 401
    assert client.get(f"/api/v1/profiles/{SHIPPED}").status_code == 401


def measured_document(name: str) -> dict:
    text = resources.files("app.profiles").joinpath("epyc-2c-vm-2026-12.json").read_text()
    return {**json.loads(text), "name": name}


def test_a_run_names_its_tenants_upload_and_the_worker_simulates_on_it(client):
    name = f"lab-epyc-{uuid.uuid4().hex[:8]}"
    assert upload(client, A, measured_document(name)).status_code == 201
    body = {
        "workload": {"kind": "tiled", "factorization": "lu", "tiles": 4, "tile_size": 256},
        "cluster": {"cpus": 2, "gpus": 0, "profile": name},
        "policies": ["heft", "oracle"],
    }
    accepted = client.post("/api/v1/runs", json=body, headers=A)
    assert accepted.status_code == 202, accepted.text
    # Another tenant has no profile of that name: refused at the field, before any worker.
    refused = client.post("/api/v1/runs", json=body, headers=B)
    assert refused.status_code == 422, refused.text
    assert ["body", "cluster", "profile"] in [e["loc"] for e in refused.json()["detail"]]
    assert name in refused.text
    # What the profile cannot time is refused at its field too (measured up to b = 512).
    too_big = {**body, "workload": {**body["workload"], "tile_size": 1024}}
    answer = client.post("/api/v1/runs", json=too_big, headers=A)
    assert answer.status_code == 422
    assert ["body", "workload", "tile_size"] in [e["loc"] for e in answer.json()["detail"]]
    # The worker finds the tenant's profile and simulates on the times it measured.
    run_id = uuid.UUID(accepted.json()["id"])
    assert runs.execute_run(run_id) == runs.ExecutionOutcome.SUCCEEDED
    results = client.get(f"/api/v1/runs/{run_id}/results", headers=A).json()["results"]
    assert {row["policy"] for row in results} == {"heft", "oracle"}
    assert all(row["makespan"] > 0 for row in results)


def test_a_study_may_name_its_tenants_upload_and_not_another_tenants(client):
    name = f"lab-epyc-{uuid.uuid4().hex[:8]}"
    assert upload(client, A, measured_document(name)).status_code == 201
    study = {
        "name": "on my machine",
        "base": {
            "workload": {"kind": "synthetic", "num_tasks": 50},
            "cluster": {"cpus": 2, "gpus": 0, "profile": name},
            "policies": ["eft", "oracle"],
        },
        "grid": {"workload.load": [0.5, 0.9]},
        "repetitions": 1,
    }
    assert client.post("/api/v1/studies", json=study, headers=A).status_code == 202
    refused = client.post("/api/v1/studies", json=study, headers=B)
    assert refused.status_code == 422, refused.text
    assert name in refused.text
