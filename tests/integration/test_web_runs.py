"""The dashboard's run page in-process (TestClient), against the real database and broker: it
shows a run whatever its status, with the leaderboard once it succeeded. The run is executed
directly (no worker)."""

import html
import json
import re
import uuid

import pytest
from fastapi.testclient import TestClient

from api.deps import SESSION_COOKIE
from api.main import app
from app.services import runs
from app.settings import get_settings
from app.sim.policies import REGISTRY
from app.sim.policies.runtime import KERNEL_MODELS
from tests.conftest import EXAMPLE_SPEC, TEST_API_KEY


@pytest.fixture
def client():
    """Logged in: the session cookie holds the admin test key (the API accepts it too)."""
    with TestClient(app, cookies={SESSION_COOKIE: TEST_API_KEY}) as client:
        yield client


def test_a_queued_run_shows_its_status_and_a_succeeded_one_its_leaderboard(client):
    run_id = client.post("/api/v1/runs", json=EXAMPLE_SPEC).json()["id"]
    queued = client.get(f"/runs/{run_id}")
    assert queued.status_code == 200 and 'id="leaderboard"' not in queued.text
    runs.execute_run(uuid.UUID(run_id))
    succeeded = client.get(f"/runs/{run_id}")
    assert succeeded.status_code == 200 and 'id="leaderboard"' in succeeded.text
    assert all(policy in succeeded.text for policy in EXAMPLE_SPEC["policies"])


def test_the_submit_form_notes_each_policy_with_what_it_does_and_its_paper(client):
    page = client.get("/")
    assert page.status_code == 200
    for name in ("heft", "sufferage", "rl"):
        policy = REGISTRY[name]
        note = policy.summary + (f". Paper: {policy.paper}" if policy.paper else "")
        assert f'title="{note}"' in html.unescape(page.text), name
    assert '<select name="perf_model">' in page.text
    for name, (summary, _) in KERNEL_MODELS.items():
        assert f">{name}</option>" in page.text and summary in html.unescape(page.text)


@pytest.mark.parametrize("limit", [10, 100_000])
def test_a_runs_page_shows_the_schedules_it_kept_and_says_why_when_none_were(
    client, monkeypatch, limit
):
    monkeypatch.setattr(get_settings(), "schedule_max_tasks", limit)
    run_id = client.post("/api/v1/runs", json=EXAMPLE_SPEC).json()["id"]
    runs.execute_run(uuid.UUID(run_id))
    page = client.get(f"/runs/{run_id}")
    text = html.unescape(page.text)
    kept = limit >= EXAMPLE_SPEC["workload"]["num_tasks"]
    why = "No per-task schedule: its 2,000 tasks are more than the 10 whose per-task schedules"
    assert (why in text) == (not kept)
    assert ("schedule as CSV" in text) == kept and ("data-charts" in text) == kept
    assert 'id="leaderboard"' in text
    utilization = json.loads(html.unescape(re.search(FIGURE, page.text)[1]))["data"][0]
    results = client.get(f"/api/v1/runs/{run_id}/results").json()["results"]
    assert utilization["y"] == [result["policy"] for result in results]
    assert utilization["z"] == [list(result["utilization"].values()) for result in results]
    for link in set(re.findall(r'href="(/[^"]*)"', page.text)):
        assert client.get(html.unescape(link)).status_code != 404, link
    csv = client.get(f"/api/v1/runs/{run_id}/schedule?policy=greedy&format=csv")
    assert csv.status_code == (200 if kept else 404)
    if not kept:
        assert "its 2,000 tasks are more than the 10" in csv.json()["detail"]


FIGURE = r"id=\"device-utilization\" data-figure='([^']*)'"
