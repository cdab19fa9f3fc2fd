"""GET /metrics in-process (TestClient) against the real database and broker; no worker runs,
so submitted runs stay queued in the broker's priority lists."""

import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from app.runtime.logs import ContextFilter
from app.settings import get_settings
from tests.conftest import EXAMPLE_SPEC, TEAM_A_KEY, TEST_API_KEY

TOKEN = "scraper-token-for-tests"
AUTH = {"X-API-Key": TEST_API_KEY}
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(get_settings(), "metrics_token", TOKEN)
    with TestClient(create_app(), headers=AUTH) as client:
        yield client


def scrape(client: TestClient) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def submit(client: TestClient, priority: int) -> str:
    response = client.post("/api/v1/runs", json={**EXAMPLE_SPEC, "priority": priority})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_metrics_need_the_scrapers_bearer_token(client):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    # An API key, even an admin's, is not a scraper's token.
    admin_key = {"Authorization": f"Bearer {TEST_API_KEY}"}
    assert client.get("/metrics", headers=admin_key).status_code == 401
    assert client.get("/metrics", headers=SCRAPER).status_code == 200


def test_without_a_token_configured_there_is_no_metrics_endpoint(monkeypatch):
    monkeypatch.setattr(get_settings(), "metrics_token", "")
    with TestClient(create_app()) as client:
        assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404
        assert client.get("/metrics").status_code == 404
    assert "/metrics" not in client.app.openapi()["paths"]


def test_queued_runs_show_in_their_priority_steps(client, clean_state):
    for priority in (9, 5, 0):
        submit(client, priority)
    samples = scrape(client)
    for priority in range(10):
        depth = value(samples, "hms_queue_depth", queue="simulations", priority=str(priority))
        assert depth == (1 if priority in (9, 5, 0) else 0)
        assert value(samples, "hms_queue_depth", queue="training", priority=str(priority)) == 0
    assert value(samples, "hms_runs", status="queued") == 3
    assert value(samples, "hms_oldest_queued_run_age_seconds") > 0
    assert value(samples, "hms_metrics_source_up", source="database") == 1
    assert value(samples, "hms_metrics_source_up", source="broker") == 1


def test_runs_by_status_follow_a_cancel(client, clean_state):
    run_ids = [submit(client, 5) for _ in range(3)]
    assert client.post(f"/api/v1/runs/{run_ids[0]}/cancel").status_code == 200
    samples = scrape(client)
    assert value(samples, "hms_runs", status="queued") == 2
    assert value(samples, "hms_runs", status="cancelled") == 1
    assert value(samples, "hms_runs", status="succeeded") == 0
    assert value(samples, "hms_studies", status="running") == 0
    assert value(samples, "hms_retrain_jobs", status="queued") == 0


def test_oldest_queued_run_age_is_zero_when_nothing_waits(client, clean_state):
    assert value(scrape(client), "hms_oldest_queued_run_age_seconds") == 0


def test_requests_are_counted_by_route_template_and_status(client, clean_state):
    run_id = submit(client, 5)
    for _ in range(3):
        assert client.get(f"/api/v1/runs/{run_id}").status_code == 200
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/api/v1/runs/{missing}").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    samples = scrape(client)
    route = "/api/v1/runs/{run_id}"
    ok = {"method": "GET", "route": route, "status": "200"}
    assert value(samples, "hms_http_requests_total", **ok) == 3
    assert value(samples, "hms_http_requests_total", method="GET", route=route, status="404") == 1
    assert value(samples, "hms_http_request_duration_seconds_count", **ok) == 3
    assert value(samples, "hms_http_request_duration_seconds_sum", **ok) > 0
    post = {"method": "POST", "route": "/api/v1/runs", "status": "202"}
    assert value(samples, "hms_http_requests_total", **post) == 1
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(samples, "hms_http_requests_total", **unmatched) == 1
    assert not any(run_id in dict(labels).get("route", "") for _, labels in samples)


def test_every_answer_carries_a_request_id(client):
    given = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health/live")
    assert len(generated.headers["X-Request-ID"]) == 32
    insane = client.get("/health/live", headers={"X-Request-ID": 'a b"c'})
    assert insane.headers["X-Request-ID"] != 'a b"c' and len(insane.headers["X-Request-ID"]) == 32
    refused = client.get("/api/v1/runs", headers={"X-API-Key": "", "X-Request-ID": "r-401"})
    assert refused.status_code == 401 and refused.headers["X-Request-ID"] == "r-401"


def test_the_access_log_line_names_request_route_and_tenant(client, clean_state, caplog):
    caplog.handler.addFilter(ContextFilter())  # what the handler configure_logging installs has
    with caplog.at_level(logging.INFO, logger="api.access"):
        client.get("/api/v1/runs", headers={"X-API-Key": TEAM_A_KEY, "X-Request-ID": "req-7"})
    [record] = [r for r in caplog.records if r.name == "api.access"]
    assert record.route == "/api/v1/runs" and record.status == 200
    assert record.request_id == "req-7" and record.tenant == "team-a"


def test_an_unhandled_error_is_a_500_with_the_request_id_and_is_counted(monkeypatch):
    monkeypatch.setattr(get_settings(), "metrics_token", TOKEN)
    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "r-500"})
        assert response.status_code == 500 and response.headers["X-Request-ID"] == "r-500"
        assert response.json() == {"detail": "Internal Server Error"}
        samples = scrape(client)
    assert value(samples, "hms_http_requests_total", method="GET", route="/boom", status="500") == 1
