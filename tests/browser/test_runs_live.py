"""Logging in, submitting a run from the form, and watching its progress bar move live."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.services import studies
from tests.browser.conftest import log_in
from tests.conftest import TEAM_A_KEY, TEST_API_KEY
from tests.fakes import RecordingQueue
from tests.processes import Worker

WRONG_KEY = "not-a-key"


def test_login_refuses_a_wrong_key_and_logout_clears_the_cookie(new_page, http):
    page = new_page()
    page.page.goto("/")
    assert "/login" in page.page.url  # no cookie: every page sends you to the login form
    page.page.fill("input[name=key]", WRONG_KEY)
    page.page.click("form[action='/login'] button[type=submit]")
    assert "invalid API key" in page.page.inner_text("#login-error")

    log_in(page, TEAM_A_KEY)
    assert page.page.inner_text("header .who b") == "team-a"
    (cookie,) = page.page.context.cookies()
    assert (cookie["name"], cookie["value"]) == ("hms_key", TEAM_A_KEY)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"

    page.page.click("header .who button")
    page.page.wait_for_url("**/login")
    assert page.page.context.cookies() == []
    page.page.goto("/studies")
    assert "/login" in page.page.url


def test_a_form_post_from_another_origin_is_refused(api, http):
    response = httpx.post(
        f"{api.url}/runs",
        data={"workload.num_tasks": "10", "policies": "heft"},
        cookies={"hms_key": TEAM_A_KEY},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert http.get("/api/v1/runs").json()["total"] == 0


def test_the_form_shows_each_validation_error_next_to_its_field(new_page, http):
    page = new_page()
    log_in(page, TEAM_A_KEY)
    page.page.click("details.submit summary")
    page.page.fill("input[name='workload.num_tasks']", "many")
    page.page.fill("input[name='cluster.gpus']", "-1")
    page.page.uncheck("input[name=policies]:checked >> nth=0")
    submit(page)
    errors = _errors(page)
    assert errors == {
        "workload.num_tasks": "Tasks must be a whole number",
        "cluster.gpus": "GPUs must be at least 0",
    }
    # What was typed is kept, at an address that reloads without posting again (PRG).
    assert page.page.input_value("input[name='workload.num_tasks']") == "many"
    assert "/runs/new?" in page.page.url
    methods: list[str] = []
    page.page.on("request", lambda request: methods.append(request.method))
    page.page.reload()
    assert methods and "POST" not in methods
    assert _errors(page) == errors

    page.page.fill("input[name='workload.num_tasks']", "100")
    page.page.fill("input[name='cluster.gpus']", "0")
    page.page.fill("input[name='cluster.cpus']", "0")
    submit(page)
    assert "needs at least one CPU core or GPU" in _errors(page)["cluster"]

    page.page.fill("textarea[name=spec]", '{"workload": {"kind": "synthetic"}, "policies": []}')
    submit(page)
    message = _errors(page)["spec"]
    assert "workload.synthetic.num_tasks: Field required" in message
    assert "policies: List should have at least 1 item" in message
    assert http.get("/api/v1/runs").json()["total"] == 0


def submit(page: Any) -> None:
    """Submit the run form and wait for the page the server answers with."""
    with page.page.expect_navigation():
        page.page.click("#run-form button[type=submit]")


def _errors(page: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in page.page.query_selector_all("[data-error-for]"):
        name = element.get_attribute("data-error-for")
        found[name] = (found.get(name, "") + " " + element.inner_text()).strip()
    return found


def test_a_run_submitted_from_the_form_shows_its_progress_live_until_100_percent(new_page, http):
    """No worker runs when the form is submitted, so the list shows the run queued; a worker
    started afterwards executes it, and the row follows it to 100 % without a reload."""
    page = new_page()
    log_in(page, TEAM_A_KEY)
    page.page.click("details.submit summary")
    page.page.fill("input[name='workload.num_tasks']", "200000")
    for policy in ("round_robin", "random", "learned", "oracle"):
        page.page.uncheck(f"input[name=policies][value={policy}]")
    submit(page)
    page.page.wait_for_selector("#submitted")
    run_id = page.page.get_attribute("#submitted a", "href").rsplit("/", 1)[1]
    row = f"tr[data-run='{run_id}'] .live"
    assert page.page.get_attribute(row, "data-status") == "queued"
    assert page.page.inner_text(f"{row} [data-field=progress]") == "0 %"
    page.page.evaluate("window.notReloaded = true")
    # The run's own page, open meanwhile, follows it too and reloads once to show the results.
    run_tab = new_page()
    log_in(run_tab, TEAM_A_KEY)
    run_page = run_tab.page
    run_page.goto(f"/runs/{run_id}")
    assert run_page.get_attribute(".summary .live", "data-status") == "queued"
    assert run_page.query_selector("#leaderboard") is None

    worker = Worker(concurrency=1)
    try:
        page.page.wait_for_selector(f"{row}[data-status=succeeded]", timeout=180_000)
        run_page.wait_for_selector("#leaderboard", timeout=180_000)
    finally:
        worker.stop()
    assert page.page.inner_text(f"{row} [data-field=progress]") == "100 %"
    assert page.page.get_attribute(f"{row} [data-field=bar]", "style") == "width: 100%;"
    assert page.page.evaluate("window.notReloaded === true")
    # 200,000 tasks: more than runs keep schedules of (HMS_SCHEDULE_MAX_TASKS); the page says so
    # once, offers no chart or CSV it does not have, and draws the utilization the results hold.
    notice = run_page.inner_text("#no-schedules")
    assert "its 200,000 tasks are more than the 100,000 whose per-task schedules are kept" in notice
    assert run_page.query_selector("#policy-heft") is None
    assert run_page.query_selector("a[href*='/schedule?']") is None
    run_page.wait_for_selector("#device-utilization .main-svg")
    page.screenshot("runs-list")
    run = http.get(f"/api/v1/runs/{run_id}").json()
    assert (run["status"], run["tenant"], run["spec"]["workload"]["num_tasks"]) == (
        "succeeded",
        "team-a",
        200000,
    )
    assert run["spec"]["policies"] == ["greedy", "heft"]


LONE_SPEC: dict[str, Any] = {
    "workload": {"kind": "synthetic", "num_tasks": 20},
    "policies": ["greedy", "heft"],
}
STUDY_SPEC: dict[str, Any] = {
    "name": "gpus sweep",
    "base": LONE_SPEC,
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 1,
}


def test_the_study_filter_lists_lone_runs_or_one_studys_named_and_linked(new_page, http):
    """No worker: the study's fan-out runs here (it creates the runs) and the runs stay queued,
    which is all a list needs."""
    lone = http.post("/api/v1/runs", json=LONE_SPEC).json()["id"]
    study = http.post("/api/v1/studies", json=STUDY_SPEC).json()["id"]
    studies.fan_out_study(uuid.UUID(study), RecordingQueue())
    page = new_page()
    log_in(page, TEST_API_KEY)
    assert len(_rows(page)) == 3

    page.page.select_option("select[name=study_id]", "none")  # the filter applies on change
    page.page.wait_for_url("**/?study_id=none")
    assert _rows(page) == [lone]
    page.page.select_option("select[name=study_id]", study)
    page.page.wait_for_url(f"**/?study_id={study}")
    of_study = _rows(page)
    assert len(of_study) == 2 and lone not in of_study
    row = f"tr[data-run='{of_study[0]}']"
    assert page.page.inner_text(f"{row} a.study") == "gpus sweep"
    assert "cell " in page.page.inner_text(row) and "rep. 0" in page.page.inner_text(row)
    page.page.click(f"{row} a.study")
    page.page.wait_for_url(f"**/studies/{study}")


def _rows(page: Any) -> list[str]:
    return [row.get_attribute("data-run") for row in page.page.query_selector_all("tr[data-run]")]
