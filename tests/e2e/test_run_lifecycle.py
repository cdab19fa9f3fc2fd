"""A run's life through real processes: the API under uvicorn, a `celery worker` subprocess,
the embedded PostgreSQL and Valkey."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from celery.result import AsyncResult

from tests.conftest import EXAMPLE_SPEC, LONG_SPEC, TEST_API_KEY
from tests.processes import wait_until
from workers.celery_app import app as celery_app

EXAMPLE = EXAMPLE_SPEC
AUTH = {"X-API-Key": TEST_API_KEY}


def long_run(priority: int = 5) -> dict:
    return {**LONG_SPEC, "priority": priority}


@pytest.fixture
def http(api, worker, clean_state):
    with httpx.Client(base_url=api.url, headers=AUTH, timeout=30) as client:
        yield client


def submit(http: httpx.Client, body: dict) -> str:
    response = http.post("/api/v1/runs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_for_status(
    http: httpx.Client, run_id: str, wanted: set[str], timeout_s: float = 60
) -> dict:
    run: dict = {}

    def reached() -> bool:
        nonlocal run
        run = http.get(f"/api/v1/runs/{run_id}").json()
        return run["status"] in wanted

    wait_until(reached, timeout_s, f"run {run_id} in {wanted}", every_s=0.1)
    return run


def test_the_readme_example_succeeds_with_one_result_per_policy(http):
    run_id = submit(http, EXAMPLE)
    run = wait_for_status(http, run_id, {"succeeded", "failed"}, timeout_s=30)
    assert run["status"] == "succeeded", run
    assert run["attempts"] == 1 and run["progress"] == 1.0 and run["error"] is None
    assert run["created_at"] <= run["started_at"] <= run["finished_at"]
    results = http.get(f"/api/v1/runs/{run_id}/results").json()["results"]
    assert sorted(r["policy"] for r in results) == ["greedy", "random", "round_robin"]
    for result in results:
        assert result["makespan"] > 0 and result["energy"] > 0 and result["cost"] > 0
        assert len(result["utilization"]) == 12


def test_progress_moves_between_0_and_1_while_running(http):
    run_id = submit(http, long_run())
    seen: list[float] = []

    def partway() -> bool:
        run = http.get(f"/api/v1/runs/{run_id}").json()
        seen.append(run["progress"])
        return run["status"] == "running" and 0 < run["progress"] < 1

    wait_until(partway, 60, "progress strictly between 0 and 1")
    state = AsyncResult(run_id, app=celery_app)
    wait_until(lambda: state.state == "PROGRESS", 60, "Celery state PROGRESS")
    assert 0 <= state.info["progress"] <= 1
    # The stage is the run's phase, as GET /runs/{id} shows it.
    policies = "|".join(LONG_SPEC["policies"])
    simulating = rf"simulating ({policies}) \(\d/3\)"
    phases = rf"building the workload|{simulating}|computing metrics.*|storing results"
    assert re.fullmatch(phases, state.info["stage"]), state.info
    run = wait_for_status(http, run_id, {"succeeded"}, timeout_s=120)
    assert run["progress"] == 1.0
    assert seen == sorted(seen)


def test_priority_9_overtakes_priority_0_runs_queued_earlier(http):
    blocker = submit(http, long_run(priority=0))
    wait_for_status(http, blocker, {"running"})
    low = [submit(http, {**EXAMPLE, "priority": 0, "seed": seed}) for seed in range(3)]
    urgent = submit(http, {**EXAMPLE, "priority": 9})
    assert http.get(f"/api/v1/runs/{blocker}").json()["status"] == "running", (
        "blocker ended too soon"
    )
    started = {
        run_id: wait_for_status(http, run_id, {"succeeded"}, timeout_s=120)["started_at"]
        for run_id in [blocker, *low, urgent]
    }
    assert started[urgent] < min(started[run_id] for run_id in low)
    # Among equal priorities, first in first out.
    assert [started[run_id] for run_id in low] == sorted(started[run_id] for run_id in low)


def test_cancelling_a_running_run_stops_it_and_keeps_no_results(http, worker):
    run_id = submit(http, long_run())
    wait_for_status(http, run_id, {"running"})
    assert http.delete(f"/api/v1/runs/{run_id}").status_code == 409  # running: cancel first
    response = http.post(f"/api/v1/runs/{run_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    # The worker notices at its next progress report and stops the simulation.
    outcome = AsyncResult(run_id, app=celery_app)
    wait_until(outcome.ready, 30, "the cancelled task to end")
    assert outcome.result == {"run_id": run_id, "outcome": "cancelled"}
    assert http.get(f"/api/v1/runs/{run_id}").json()["status"] == "cancelled"
    assert http.get(f"/api/v1/runs/{run_id}/results").status_code == 409
    # The worker is free again: the next run goes through.
    follow_up = submit(http, EXAMPLE)
    assert wait_for_status(http, follow_up, {"succeeded"}, timeout_s=30)["status"] == "succeeded"
    assert worker.alive()


def test_the_hms_cli_submits_and_waits_for_a_run(http, api, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(EXAMPLE))
    hms = str(Path(sys.executable).parent / "hms")
    common = ["--api", api.url, "--key", TEST_API_KEY]
    done = subprocess.run(
        [hms, "submit", str(spec), "--wait", "--json", "--idempotency-key", "cli-1", *common],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    run = json.loads(done.stdout)
    assert run["status"] == "succeeded"
    results = subprocess.run(
        [hms, "results", run["id"], "--json", *common],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert len(json.loads(results.stdout)["results"]) == 3
    refused = subprocess.run(
        [hms, "cancel", run["id"], *common], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0 and "409" in refused.stderr
    deleted = subprocess.run(
        [hms, "delete", run["id"], *common], capture_output=True, text=True, timeout=120, check=True
    )
    assert deleted.stdout.strip() == f"deleted run {run['id']}"
    gone = subprocess.run(
        [hms, "status", run["id"], *common], capture_output=True, text=True, timeout=120
    )
    assert gone.returncode != 0 and "404" in gone.stderr


def test_hms_keys_create_list_and_revoke_a_tenants_key(http, api):
    hms = str(Path(sys.executable).parent / "hms")
    admin = ["--api", api.url, "--key", TEST_API_KEY]

    def hms_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([hms, *args], capture_output=True, text=True, timeout=120)

    created = hms_run("keys", "create", "team-x", *admin)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("hms_") and "cannot be shown again" in created.stderr
    mine = ["--api", api.url, "--key", key]
    assert json.loads(hms_run("runs", "--json", *mine).stdout)["total"] == 0  # only its own
    listed = hms_run("keys", "list", *admin).stdout
    assert "team-x" in listed and "active" in listed and key not in listed
    assert hms_run("keys", "list", *mine).returncode != 0  # not an admin
    assert hms_run("keys", "revoke", "team-x", *admin).returncode == 0
    refused = hms_run("runs", "--json", *mine)
    assert refused.returncode != 0 and "403" in refused.stderr and "revoked" in refused.stderr


def test_a_runs_event_stream_delivers_its_progress_and_terminal_state_live(http, capsys):
    """Each state event after the first carries the worker's write time (`updated_at`); the
    delay to its arrival here is printed (the API polls every 0.25 s; the issue asks for <= 1 s),
    not asserted: this suite runs on busy machines. Asserted are order and completeness."""
    run_id = submit(http, long_run())
    arrivals: list[tuple[float, dict]] = []
    with http.stream("GET", f"/api/v1/runs/{run_id}/events", timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.time(), json.loads(line.removeprefix("data: "))))
    states = [state for _, state in arrivals]
    statuses = [state["status"] for state in states]
    assert statuses[-1] == "succeeded" and statuses.count("succeeded") == 1
    assert "running" in statuses
    assert statuses == sorted(statuses, key=["queued", "running", "succeeded"].index)
    progress = [state["progress"] for state in states if state["status"] == "running"]
    assert len(set(progress)) >= 3 and progress == sorted(progress)  # several live reports
    assert states[-1] == {
        **states[-1],
        "progress": 1.0,
        "attempts": 1,
        "error": None,
    }
    # The first event is the state at connect, written before the stream opened: not a delay.
    delays = sorted(
        arrived - datetime.fromisoformat(state["updated_at"]).timestamp()
        for arrived, state in arrivals[1:]
    )
    with capsys.disabled():
        print(
            f"\nSSE delay, worker write -> client event, {len(delays)} events: "
            f"min {delays[0] * 1000:.0f} ms, median {delays[len(delays) // 2] * 1000:.0f} ms, "
            f"max {delays[-1] * 1000:.0f} ms"
        )
