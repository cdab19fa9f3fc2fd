"""The dashboard's run page in-process (TestClient), against the real database and broker: it
shows a run whatever its status, with the leaderboard once it succeeded. The run is executed
directly (no worker)."""

import html
import uuid

import pytest
from fastapi.testclient import TestClient

from api.deps import SESSION_COOKIE
from api.main import app
from app.services import runs
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
