"""Abuse limits: body size (413) and submissions per API key per minute (429, Redis-backed)."""

import time
from types import SimpleNamespace

import pytest
import redis
from fastapi.testclient import TestClient

from api import limits
from api.main import app, create_app
from app.settings import get_settings
from tests.conftest import EXAMPLE_SPEC, TEAM_A_KEY, TEST_API_KEY


@pytest.fixture
def small_bodies(monkeypatch, clean_state):
    monkeypatch.setattr(get_settings(), "max_body_bytes", 1000)
    with TestClient(create_app()) as client:
        yield client


def test_a_declared_oversized_body_is_refused_before_it_is_read(small_bodies):
    body = {**EXAMPLE_SPEC, "policies": ["greedy"], "padding": "x" * 2000}
    response = small_bodies.post("/api/v1/runs", json=body, headers={"X-API-Key": TEST_API_KEY})
    assert response.status_code == 413
    assert response.json() == {"detail": "the request body exceeds 1000 bytes"}


def test_a_streamed_body_is_cut_off_at_the_limit(small_bodies):
    def chunks():
        yield b'{"workload": {"kind": "inline", "csv": "'
        for _ in range(100):
            yield b"x" * 100

    response = small_bodies.post(
        "/api/v1/runs",
        content=chunks(),
        headers={"X-API-Key": TEST_API_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_a_small_body_still_passes(small_bodies):
    response = small_bodies.post(
        "/api/v1/runs", json=EXAMPLE_SPEC, headers={"X-API-Key": TEST_API_KEY}
    )
    assert response.status_code == 202


def test_submissions_past_the_per_key_limit_get_429_with_retry_after(monkeypatch, clean_state):
    broker = redis.Redis.from_url(clean_state.redis_url)
    for key in broker.scan_iter(match="hms:submissions:*"):
        broker.delete(key)
    monkeypatch.setattr(get_settings(), "submissions_per_minute", 3)
    # Counters are per clock minute: on a slow machine the requests could straddle two windows.
    frozen = time.time()
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: frozen))
    with TestClient(app) as client:
        codes = [
            client.post(
                "/api/v1/runs", json=EXAMPLE_SPEC, headers={"X-API-Key": TEAM_A_KEY}
            ).status_code
            for _ in range(4)
        ]
        assert codes == [202, 202, 202, 429]
        limited = client.post("/api/v1/runs", json=EXAMPLE_SPEC, headers={"X-API-Key": TEAM_A_KEY})
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "3 submissions a minute" in limited.json()["detail"]
        # Another key has its own budget; reads are not limited.
        other = client.post("/api/v1/runs", json=EXAMPLE_SPEC, headers={"X-API-Key": TEST_API_KEY})
        assert other.status_code == 202
        assert client.get("/api/v1/runs", headers={"X-API-Key": TEAM_A_KEY}).status_code == 200


#: 1M tasks on 64 CPU cores and 8 GPUs: about 3 GB by app/runmemory.py's estimate.
HUGE_RUN = {
    "workload": {"kind": "synthetic", "num_tasks": 1_000_000},
    "cluster": {"cpus": 64, "gpus": 8},
    "policies": ["heft", "oracle"],
}


@pytest.fixture
def small_memory(monkeypatch, clean_state):
    monkeypatch.setattr(get_settings(), "run_memory_mb", 1000)
    with TestClient(app, headers={"X-API-Key": TEST_API_KEY}) as client:
        yield client


def test_a_run_over_the_memory_budget_gets_422_naming_what_to_shrink(small_memory):
    response = small_memory.post("/api/v1/runs", json=HUGE_RUN)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "workload", "num_tasks"]
    assert "1,000 MB a run may use (HMS_RUN_MEMORY_MB)" in error["msg"], error["msg"]
    assert "1,000,000 tasks" in error["msg"] and "devices (72)" in error["msg"]
    smaller = {**HUGE_RUN, "workload": {"kind": "synthetic", "num_tasks": 100_000}}
    assert small_memory.post("/api/v1/runs", json=smaller).status_code == 202


def test_a_study_with_a_cell_over_the_memory_budget_gets_422_naming_its_grid_key(small_memory):
    study = {
        "name": "sizes",
        "base": {**HUGE_RUN, "workload": {"kind": "synthetic", "num_tasks": 1000}},
        "grid": {"workload.num_tasks": [1000, 1_000_000]},
    }
    response = small_memory.post("/api/v1/studies", json=study)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "grid", "workload.num_tasks"]
    assert "1,000,000 tasks" in error["msg"], error["msg"]
