"""The dashboard's runs in-process (TestClient), against the real database and broker: a run's
page whatever its status, with the leaderboard once it succeeded (the run is executed directly,
no worker); the submit form's errors after its redirect; the list's study filter."""

import html
import json
import re
import uuid

import pytest
from fastapi.testclient import TestClient

from api.deps import SESSION_COOKIE
from api.main import app
from app.services import runs, studies
from app.settings import get_settings
from app.sim.policies import REGISTRY
from app.sim.policies.runtime import KERNEL_MODELS
from tests.conftest import EXAMPLE_SPEC, TEST_API_KEY
from tests.fakes import RecordingQueue


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


def test_a_run_shows_the_worker_of_its_latest_attempt_in_its_json_and_page(client):
    """With workers on several hosts a user wants to know where a run ran: the claim records
    the worker's Celery hostname, a later attempt (a redelivery) replaces it."""
    from app.db.models import Run
    from app.errors import RunNotFound
    from app.services import lifecycle

    run_id = client.post("/api/v1/runs", json=EXAMPLE_SPEC).json()["id"]
    assert client.get(f"/api/v1/runs/{run_id}").json()["worker"] is None
    assert 'id="run-worker"' not in client.get(f"/runs/{run_id}").text
    lifecycle.claim(Run, uuid.UUID(run_id), RunNotFound, "celery@lost-host")  # its worker died
    runs.execute_run(uuid.UUID(run_id), worker="celery@worker2")
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert (run["status"], run["attempts"], run["worker"]) == ("succeeded", 2, "celery@worker2")
    assert '<code id="run-worker">celery@worker2</code>' in client.get(f"/runs/{run_id}").text


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


def _error_of(page: str, field: str) -> list[str]:
    return re.findall(rf'data-error-for="{re.escape(field)}">([^<]*)<', html.unescape(page))


def test_a_failed_submit_redirects_to_a_get_address_that_shows_the_errors_again(client):
    form = {"workload.num_tasks": "100", "cluster.cpus": "eight", "policies": ["heft", "oracle"]}
    posted = client.post("/runs", data=form)
    assert [r.status_code for r in posted.history] == [303]  # POST/redirect/GET
    assert posted.request.method == "GET" and posted.url.path == "/runs/new"
    for page in (posted, client.get(str(posted.url))):  # a reload: the same GET, no POST
        assert page.status_code == 200
        assert _error_of(page.text, "cluster.cpus") == ["CPU cores must be a whole number"]
        assert 'name="cluster.cpus" value="eight"' in page.text  # what was typed is kept
        assert 'value="heft" checked' in page.text and 'value="greedy" checked' not in page.text
    assert client.get("/api/v1/runs").json()["total"] == 0


def test_a_spec_the_service_refuses_is_shown_again_after_the_redirect(client):
    spec = json.dumps({**EXAMPLE_SPEC, "workload": {"kind": "wfcommons", "path": "wf.json"}})
    posted = client.post("/runs", data={"spec": spec})
    assert posted.history[0].status_code == 303 and posted.url.path == "/runs/new"
    assert any("does not read files" in e for e in _error_of(posted.text, "spec")), posted.text


def test_a_submitted_run_redirects_to_the_list_and_a_blank_form_has_no_errors(client):
    posted = client.post("/runs", data={"workload.num_tasks": "50", "policies": "heft"})
    assert posted.history[0].status_code == 303 and posted.url.path == "/"
    assert 'id="submitted"' in posted.text
    blank = client.get("/runs/new")
    assert blank.status_code == 200 and "data-error-for" not in blank.text
    assert 'name="workload.num_tasks" value="2000"' in blank.text


STUDY = {
    "name": "gpus sweep",
    "base": {**EXAMPLE_SPEC, "workload": {"kind": "synthetic", "num_tasks": 20}},
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 1,
}


def _listed(page: str) -> set[str]:
    return set(re.findall(r'<tr data-run="([^"]+)"', page))


def test_the_list_filters_lone_runs_and_a_studys_runs_and_names_the_study(client):
    lone = client.post("/api/v1/runs", json=EXAMPLE_SPEC).json()["id"]
    study = client.post("/api/v1/studies", json=STUDY).json()["id"]
    other_response = client.post("/api/v1/studies", json={**STUDY, "name": "other"})
    assert other_response.status_code == 202, other_response.text
    other = other_response.json()["id"]
    for study_id in (study, other):  # the fan-out creates the runs
        studies.fan_out_study(uuid.UUID(study_id), RecordingQueue())
    of_study = {
        r["id"] for r in client.get("/api/v1/runs", params={"study_id": study}).json()["items"]
    }
    assert len(of_study) == 2

    everything = client.get("/").text
    assert len(_listed(everything)) == 5  # the lone run and two studies of 2 runs
    assert _listed(client.get("/", params={"study_id": "none"}).text) == {lone}
    only_study = client.get("/", params={"study_id": study}).text
    assert _listed(only_study) == of_study
    assert f'<option value="{study}" selected>gpus sweep' in only_study  # the control shows it
    # A study's run names its study, linked, and its cell and repetition.
    row = re.search(rf'<tr data-run="{min(of_study)}">.*?</tr>', everything, re.S).group()
    assert f'<a href="/studies/{study}" class="study">gpus sweep</a>' in row
    assert re.search(r"cell [01], rep\. 0", row)
    assert f"/studies/{other}" not in row

    lone_runs = client.get("/api/v1/runs", params={"study_id": "none"}).json()
    assert [r["id"] for r in lone_runs["items"]] == [lone] and lone_runs["total"] == 1
    assert client.get("/api/v1/runs", params={"study_id": "lone"}).status_code == 422


def test_an_empty_filter_field_is_no_filter_on_both_lists(client):
    """A GET form sends `status=` for "all", and the pagers' links carry it so."""
    run_id = client.post("/api/v1/runs", json=EXAMPLE_SPEC).json()["id"]
    study_id = client.post("/api/v1/studies", json=STUDY).json()["id"]
    runs_page = client.get("/", params={"status": "", "study_id": "", "offset": 0})
    assert runs_page.status_code == 200 and run_id in _listed(runs_page.text)
    studies_page = client.get("/studies", params={"status": "", "offset": 0})
    assert studies_page.status_code == 200 and f'data-study="{study_id}"' in studies_page.text
