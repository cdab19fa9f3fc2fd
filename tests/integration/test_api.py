"""The HTTP API in-process (TestClient) against the real database and broker; no worker runs,
so submitted runs stay queued."""

import json
import re
import uuid
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import app
from app.sim.policies import POLICY_NAMES
from tests.conftest import EXAMPLE_SPEC, TEST_API_KEY
from tests.fakes import RecordingQueue

EXAMPLE = EXAMPLE_SPEC
AUTH = {"X-API-Key": TEST_API_KEY}


@pytest.fixture
def client():
    """Sends the admin test key unless a request says otherwise."""
    with TestClient(app, headers=AUTH) as client:
        yield client


def submit(client, body=EXAMPLE, **headers):
    return client.post("/api/v1/runs", json=body, headers={**AUTH, **headers})


def test_submit_answers_202_with_the_run_and_its_location(client):
    response = submit(client)
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "queued" and run["attempts"] == 0 and run["progress"] == 0
    assert response.headers["Location"] == f"/api/v1/runs/{run['id']}"
    assert client.get(response.headers["Location"]).json()["id"] == run["id"]


def test_the_same_idempotency_key_returns_the_same_run(client):
    first = submit(client, **{"Idempotency-Key": "abc"})
    again = submit(client, **{"Idempotency-Key": "abc"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get("/api/v1/runs").json()["total"] == 1
    other = submit(client, {**EXAMPLE, "seed": 3}, **{"Idempotency-Key": "abc"})
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({**EXAMPLE, "policies": ["warp_drive"]}, ["body", "policies", 0]),
        (
            {**EXAMPLE, "workload": {"kind": "synthetic", "num_tasks": 10**9}},
            ["body", "workload", "synthetic", "num_tasks"],
        ),
        ({**EXAMPLE, "priority": -1}, ["body", "priority"]),
        ({**EXAMPLE, "knowledge": "psychic"}, ["body", "knowledge"]),
        ({**EXAMPLE, "rank_by": "vibes"}, ["body", "rank_by"]),
        (
            {**EXAMPLE, "cluster": {"cpus": 8, "gpus": 4, "profile": "no-such-profile"}},
            ["body", "cluster", "profile"],
        ),
        (
            {**EXAMPLE, "workload": {"kind": "synthetic", "num_tasks": 10, "load": 0}},
            ["body", "workload", "synthetic", "load"],
        ),
        ({"policies": ["greedy"]}, ["body", "workload"]),
        # What the schema does not allow though pydantic's lax mode would coerce it.
        ({**EXAMPLE, "priority": True}, ["body", "priority"]),
        ({**EXAMPLE, "seed": "7"}, ["body", "seed"]),
        ({**EXAMPLE, "rl_warm_start": 0}, ["body", "rl_warm_start"]),
    ],
)
def test_bad_input_gets_422_naming_the_field(client, body, location):
    response = submit(client, body)
    assert response.status_code == 422
    assert location in [error["loc"] for error in response.json()["detail"]]


def test_knowledge_rank_metric_and_offered_load_are_accepted(client):
    workload = {"kind": "synthetic", "num_tasks": 100, "load": 0.5}
    cluster = {"cpus": 4, "gpus": 1, "gpu": {"memory_bandwidth": 300}}
    body = {**EXAMPLE, "workload": workload, "cluster": cluster, "knowledge": "clairvoyant",
            "rank_by": "energy"}  # fmt: skip
    response = submit(client, body)
    assert response.status_code == 202, response.text
    spec = response.json()["spec"]
    assert (spec["knowledge"], spec["rank_by"], spec["workload"]["load"]) == (
        "clairvoyant",
        "energy",
        0.5,
    )
    assert spec["cluster"]["gpu"]["memory_bandwidth"] == 300


def test_load_and_arrival_rate_together_get_422_naming_both(client):
    workload = {"kind": "synthetic", "num_tasks": 100, "load": 0.5, "arrival_rate": 50.0}
    response = submit(client, {**EXAMPLE, "workload": workload})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(
        error["loc"][:2] == ["body", "workload"]
        and re.search(r"\bload\b", error["msg"])
        and "arrival_rate" in error["msg"]
        for error in errors
    ), errors


def test_malformed_json_and_malformed_ids_get_422_unknown_ids_404(client):
    response = client.post(
        "/api/v1/runs", content=b"{nope", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert client.get("/api/v1/runs/not-a-uuid").status_code == 422
    assert client.get(f"/api/v1/runs/{uuid.uuid4()}").status_code == 404
    assert client.delete(f"/api/v1/runs/{uuid.uuid4()}").status_code == 404
    assert client.post(f"/api/v1/runs/{uuid.uuid4()}/cancel").status_code == 404


def test_a_method_a_path_lacks_gets_405_allowing_every_method_of_that_path(client):
    # /models/retrain also looks like /models/{version}: only an integer version may match it.
    retrain = client.get("/api/v1/models/retrain")
    assert retrain.status_code == 405 and retrain.headers["Allow"] == "POST"
    # GET and DELETE /runs/{id} are two routes: Starlette alone would allow the first one's.
    options = client.options(f"/api/v1/runs/{uuid.uuid4()}")
    assert options.status_code == 405
    assert set(options.headers["Allow"].split(", ")) == {"GET", "DELETE"}


def test_model_versions_are_integers_in_the_path_and_in_the_schema(client):
    assert client.get("/api/v1/models/7").status_code == 404
    assert client.get("/api/v1/models/latest").status_code == 404
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/models/{version}"]["get"]
    assert operation["parameters"][0]["schema"]["type"] == "integer"


def test_a_workload_needs_its_kind_and_the_schema_says_so(client):
    response = submit(client, {**EXAMPLE, "workload": {"num_tasks": 10}})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "workload"] and "'kind'" in error["msg"]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    variants = schemas["RunSpec"]["properties"]["workload"]["oneOf"]
    names = {variant["$ref"].rsplit("/", 1)[1] for variant in variants}
    assert names == {
        "SyntheticWorkloadSpec",
        "LayeredDagSpec",
        "TiledSpec",
        "WfCommonsSpec",
        "StgSpec",
        "InlineSpec",
        "ExplicitSpec",
    }
    for variant in variants:
        assert "kind" in schemas[variant["$ref"].rsplit("/", 1)[1]]["required"], variant


def test_list_is_paginated_and_filtered(client):
    ids = [submit(client).json()["id"] for _ in range(3)]
    client.post(f"/api/v1/runs/{ids[0]}/cancel")
    page = client.get("/api/v1/runs", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    assert [run["id"] for run in page["items"]] == ids[::-1][:2]
    cancelled = client.get("/api/v1/runs", params={"status": "cancelled"}).json()
    assert [run["id"] for run in cancelled["items"]] == [ids[0]]
    assert client.get("/api/v1/runs", params={"limit": 1000}).status_code == 422
    assert client.get("/api/v1/runs", params={"status": "sleeping"}).status_code == 422


def test_cancel_a_queued_run_then_refuse_a_second_cancel(client):
    run_id = submit(client).json()["id"]
    cancelled = client.post(f"/api/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/runs/{run_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "cancelled"  # still there


def test_delete_refuses_a_queued_run_and_removes_an_ended_one(client):
    run_id = submit(client).json()["id"]
    refused = client.delete(f"/api/v1/runs/{run_id}")
    assert refused.status_code == 409 and "cancel it first" in refused.json()["detail"]
    client.post(f"/api/v1/runs/{run_id}/cancel")
    deleted = client.delete(f"/api/v1/runs/{run_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 404
    assert client.delete(f"/api/v1/runs/{run_id}").status_code == 404
    assert client.get("/api/v1/runs").json()["total"] == 0


def test_results_of_a_run_without_results_are_a_conflict(client):
    run_id = submit(client).json()["id"]
    response = client.get(f"/api/v1/runs/{run_id}/results")
    assert response.status_code == 409
    assert response.json() == {"detail": f"run {run_id} has no results, it is queued"}


def test_submission_lands_on_the_simulations_queue_with_the_mapped_priority(client, servers):
    broker = redis.Redis.from_url(servers.redis_url)
    submit(client, {**EXAMPLE, "priority": 9})
    submit(client, {**EXAMPLE, "priority": 0})
    submit(client, {**EXAMPLE, "priority": 0})
    # The Redis transport keeps one list per step; step 0 (API priority 9) is popped first.
    assert broker.llen("simulations") == 1
    assert broker.llen("simulations:9") == 2


def test_health(client):
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readiness_names_the_dependency_that_is_down(servers):
    from api.deps import get_queue

    app.dependency_overrides[get_queue] = lambda: RecordingQueue(broker_down=True)
    try:
        with TestClient(app) as client:
            response = client.get("/health/ready")
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "down: Connection refused"},
    }


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_policies_are_listed_with_a_summary_and_what_they_know(client):
    policies = client.get("/api/v1/policies").json()
    assert [p["name"] for p in policies] == list(POLICY_NAMES)
    assert all(p["summary"] and isinstance(p["knows"], str) and p["knows"] for p in policies)
    heft = next(p for p in policies if p["name"] == "heft")
    assert "Topcuoglu" in heft["paper"] and "2002" in heft["paper"]
    listing = client.get("/openapi.json").json()["paths"]["/api/v1/policies"]["get"]
    assert "clairvoyant" in listing["description"]


MONTAGE = json.loads((FIXTURES / "wfcommons" / "montage.json").read_text())
RECORDS = [{"id": "a", "size": 10}, {"id": "b", "size": 5, "parents": ["a"]}]
WORKLOAD_KINDS = {
    "synthetic": {"kind": "synthetic", "num_tasks": 100, "dependency_probability": 0.3},
    "layered_dag": {"kind": "layered_dag", "num_tasks": 100, "ccr": 1.0},
    "wfcommons": {"kind": "wfcommons", "data": MONTAGE},
    "stg": {"kind": "stg", "text": (FIXTURES / "stg" / "six_tasks.stg").read_text()},
    "inline_records": {"kind": "inline", "tasks": RECORDS},
    "inline_csv": {"kind": "inline", "csv": "id,size,parents\na,10,\nb,5,a\n"},
    "explicit": {"kind": "explicit", "compute": [[1, 2], [3, 1]], "edges": [[0, 1, 4]]},
}


@pytest.mark.parametrize("kind", sorted(WORKLOAD_KINDS))
def test_every_workload_source_is_accepted(client, kind):
    response = submit(client, {"workload": WORKLOAD_KINDS[kind], "policies": ["heft", "oracle"]})
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ({"kind": "explicit", "compute": [[1], [1]], "edges": [[0, 1, 1], [1, 0, 1]]}, "cycle"),
        ({"kind": "explicit", "compute": [[1], [1]], "edges": [[0, 5, 1]]}, "does not exist"),
        ({"kind": "inline", "csv": "id,size,parents\na,10,zz\n"}, "zz"),
        ({"kind": "stg", "text": "2\n0 0 0\n1 x 1 0\n"}, "line"),
        ({"kind": "wfcommons", "data": {"workflow": {"tasks": "nope"}}}, "tasks"),
    ],
)
def test_a_malformed_dag_or_file_is_refused_at_submission_with_the_reason(
    client, workload, message
):
    response = submit(client, {"workload": workload, "policies": ["heft"]})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "workload"] and message in error["msg"]
    assert client.get("/api/v1/runs").json()["total"] == 0


def test_the_api_does_not_read_server_side_paths(client):
    response = submit(
        client, {"workload": {"kind": "stg", "path": "/etc/passwd"}, "policies": ["heft"]}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "workload", "path"]


def test_a_bad_hardware_profile_names_the_cluster_field(client):
    body = {**EXAMPLE, "cluster": {"cpus": 2, "gpus": 1, "profile": {"profiled_sizes": [1]}}}
    response = submit(client, body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "cluster"]


def test_the_schedule_endpoint_pages_tasks_and_serves_csv(client):
    from app.services import runs

    run_id = submit(client, {**EXAMPLE, "policies": ["heft", "oracle"]}).json()["id"]
    runs.execute_run(uuid.UUID(run_id))  # no worker in these tests: execute in-process
    page = client.get(
        f"/api/v1/runs/{run_id}/schedule", params={"policy": "oracle", "limit": 5, "offset": 10}
    )
    assert page.status_code == 200
    body = page.json()
    assert body["num_tasks"] == 2000 and [t["task"] for t in body["tasks"]] == list(range(10, 15))
    assert len(body["devices"]) == 12 and sum(d["tasks"] for d in body["devices"]) >= 2000
    split = [
        t
        for t in client.get(
            f"/api/v1/runs/{run_id}/schedule", params={"policy": "oracle", "limit": 2000}
        ).json()["tasks"]
        if t["partner"]
    ]
    assert all(t["device"].startswith("gpu") and t["partner"].startswith("cpu") for t in split)
    csv = client.get(f"/api/v1/runs/{run_id}/schedule", params={"policy": "heft", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "task,device,partner,gpu_fraction,start,end"
    assert len(csv.text.splitlines()) == 2001
    missing = client.get(f"/api/v1/runs/{run_id}/schedule", params={"policy": "greedy"})
    assert missing.status_code == 404 and "heft, oracle" in missing.json()["detail"]
    assert (
        client.get(f"/api/v1/runs/{run_id}/schedule", params={"policy": "nope"}).status_code == 422
    )
    results = client.get(f"/api/v1/runs/{run_id}/results").json()["results"]
    assert {r["policy"] for r in results} == {"heft", "oracle"}
    assert all(r["slr"] >= 1 and r["gap_to_oracle"] is not None for r in results)


def run_to_completion(client, body):
    from app.services import runs

    run_id = submit(client, body).json()["id"]
    runs.execute_run(uuid.UUID(run_id))  # no worker in these tests: execute in-process
    return run_id


RANKED = {
    "workload": {"kind": "synthetic", "num_tasks": 300, "seed": 4},
    "cluster": {"cpus": 4, "gpus": 2},
    "policies": ["round_robin", "greedy", "heft", "oracle"],
}


def test_results_are_ranked_by_the_runs_metric_with_its_value(client):
    run_id = run_to_completion(client, {**RANKED, "rank_by": "p95_flow_time"})
    body = client.get(f"/api/v1/runs/{run_id}/results").json()
    assert body["rank_by"] == "p95_flow_time"
    results = body["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4]
    assert all(r["rank_by"] == "p95_flow_time" for r in results)
    assert all(r["rank_value"] == r["p95_flow_time"] for r in results)
    assert [r["rank_value"] for r in results] == sorted(r["rank_value"] for r in results)
    assert all(r["mean_slowdown"] >= 1 - 1e-9 and r["lower_bound"] > 0 for r in results)
    assert all(r["gap_to_bound"] >= -1e-9 for r in results)


def test_results_recorded_before_ranking_have_no_rank_and_come_by_makespan(client):
    from sqlalchemy import update

    from app.db.models import Run, RunResult
    from app.db.session import session_scope

    run_id = run_to_completion(client, RANKED)
    with session_scope() as session:  # as a run recorded before revision 0005 reads
        session.execute(update(Run).where(Run.id == uuid.UUID(run_id)).values(rank_by=None))
        session.execute(
            update(RunResult)
            .where(RunResult.run_id == uuid.UUID(run_id))
            .values(rank=None, mean_slowdown=None, lower_bound=None, gap_to_bound=None)
        )
    body = client.get(f"/api/v1/runs/{run_id}/results").json()
    assert body["rank_by"] is None
    results = body["results"]
    assert all(
        r["rank"] is None and r["rank_by"] is None and r["rank_value"] is None for r in results
    )
    assert [r["makespan"] for r in results] == sorted(r["makespan"] for r in results)


def test_a_price_or_power_beyond_its_bound_is_a_422_and_results_hold_numbers(client):
    """`"cost": null` where the schema says number: a price of 1e308 per hour made the cost
    infinite, which JSON shows as null."""
    small = {**EXAMPLE, "workload": {"kind": "synthetic", "num_tasks": 50}}
    for device in ({"price": 1e308}, {"power_busy": 1e308}, {"power_idle": 1e308}):
        response = submit(client, {**small, "cluster": {"cpus": 2, "gpus": 1, "cpu": device}})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "cluster", "cpu", *device]
    limits = {"price": 1e6, "power_busy": 1e5, "power_idle": 1e5}
    run_id = run_to_completion(client, {**small, "cluster": {"cpus": 2, "gpus": 1, "cpu": limits}})
    results = client.get(f"/api/v1/runs/{run_id}/results").json()["results"]
    assert all(result["cost"] > 0 and result["energy"] > 0 for result in results)


def test_a_run_whose_metrics_overflow_fails_naming_the_metric(client):
    seconds = 1.5e308  # two in a chain: an infinite makespan
    body = {
        **EXAMPLE,
        "workload": {"kind": "explicit", "compute": [[seconds], [seconds]], "edges": [[0, 1, 0.0]]},
        "cluster": {"cpus": 1, "gpus": 0},
        "policies": ["greedy"],
    }
    run = client.get(f"/api/v1/runs/{run_to_completion(client, body)}").json()
    assert run["status"] == "failed"
    assert "greedy's makespan is inf" in run["error"], run["error"]
