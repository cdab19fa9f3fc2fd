"""A run's page (leaderboard, Gantt lanes), a study's page (forest plots), the models and queues
pages, and what another tenant sees, with a real worker behind the API."""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

import httpx
import pytest

from api.web.charts import RUN_METRICS
from api.web.gantt import BUSY_COLORSCALE
from api.web.templating import number
from tests.browser.conftest import log_in, wait_run
from tests.conftest import TEAM_A_KEY, TEAM_B_KEY, TEST_API_KEY
from tests.processes import wait_until

#: 3,000 tasks: more than a Gantt chart draws, so the page must say it draws the first 2,000.
RUN_SPEC: dict[str, Any] = {
    "workload": {"kind": "synthetic", "num_tasks": 3000, "seed": 5},
    "cluster": {"cpus": 4, "gpus": 2},
    "policies": ["greedy", "heft", "oracle"],
}
DEVICES = ["cpu0", "cpu1", "cpu2", "cpu3", "gpu0", "gpu1"]
STUDY_SPEC: dict[str, Any] = {
    "name": "load x gpus",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 300},
        "cluster": {"cpus": 4, "gpus": 1},
        "policies": ["greedy", "heft", "oracle"],
    },
    "grid": {"workload.load": [0.5, 0.9], "cluster.gpus": [1, 2]},
    "repetitions": 3,
}


@pytest.fixture
def team_a(api, http) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"X-API-Key": TEAM_A_KEY}, timeout=30)


def submit_run(client: httpx.Client, spec: dict[str, Any]) -> str:
    response = client.post("/api/v1/runs", json=spec)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def run_study(client: httpx.Client, spec: dict[str, Any]) -> str:
    """Submits a study and waits for it to end; its id."""
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 202, response.text
    study_id = str(response.json()["id"])

    def ended() -> bool:
        return client.get(f"/api/v1/studies/{study_id}").json()["status"] != "running"

    wait_until(ended, 300, f"study {study_id} to end", every_s=0.5)
    return study_id


def test_the_run_page_shows_the_leaderboard_of_the_api_and_one_gantt_lane_per_device(
    new_page, team_a, worker
):
    run_id = submit_run(team_a, RUN_SPEC)
    assert wait_run(team_a, run_id)["status"] == "succeeded"
    api_results = team_a.get(f"/api/v1/runs/{run_id}/results").json()
    page = new_page()
    log_in(page, TEAM_A_KEY)
    page.page.goto(f"/runs/{run_id}")

    rows = page.page.query_selector_all("#leaderboard tbody tr")
    assert [row.get_attribute("data-policy") for row in rows] == [
        result["policy"] for result in api_results["results"]
    ]
    for row, result in zip(rows, api_results["results"], strict=True):
        for cell in row.query_selector_all("td[data-metric]"):
            metric, shown = cell.get_attribute("data-metric"), cell.get_attribute("data-value")
            expected = result[metric]
            assert (float(shown) if shown else None) == expected, (result["policy"], metric)
    assert page.page.inner_text("#leaderboard th.rank") == "mean flow time (s)"
    assert "first 2,000" in page.page.inner_text("main")

    for policy in RUN_SPEC["policies"]:
        section = f"#policy-{policy}"
        if page.page.get_attribute(section, "open") is None:
            page.page.click(f"{section} summary")
        page.page.wait_for_selector(f"#gantt-{policy} .ytick")
        lanes = page.page.eval_on_selector_all(
            f"#gantt-{policy} .yaxislayer-above .ytick text",
            "ticks => ticks.map(t => t.textContent)",
        )
        assert sorted(lanes) == DEVICES, policy  # one lane each, in any DOM order
        drawn = page.page.evaluate(
            f"document.getElementById('gantt-{policy}').data"
            ".filter(t => t.type === 'bar').reduce((n, t) => n + t.x.length, 0)"
        )
        splits = page.page.evaluate(
            f"document.getElementById('gantt-{policy}').data.filter(t => t.type === 'bar')"
            ".reduce((n, t) => n + t.marker.pattern.shape.filter(s => s === '/').length, 0)"
        )
        # The first 2,000 tasks, plus a second bar for each split task (hatched on both lanes).
        assert drawn == 2000 + splits // 2 and splits % 2 == 0
        assert page.page.wait_for_selector(f"#utilization-{policy} .heatmaplayer")
        drawn_scale = page.page.evaluate(
            f"document.getElementById('utilization-{policy}')._fullData[0].colorscale"
        )
        assert drawn_scale == BUSY_COLORSCALE  # as plotly.js resolved it: busy is dark blue
        assert "first 2,000 of 3,000 tasks" in page.page.inner_text(f"#policy-{policy}")
    page.screenshot("run-page")
    for result in api_results["results"][1:]:  # the README's shot: the best policy's charts
        page.page.click(f"#policy-{result['policy']} summary")
    page.page.evaluate("window.scrollTo(0, 0)")
    page.screenshot("readme-run-page", full_page=False)

    link = page.page.get_attribute("#policy-heft a[download]", "href")
    schedule = page.page.request.get(link)
    assert schedule.ok
    tasks = list(csv.DictReader(io.StringIO(schedule.text())))
    assert len(tasks) == RUN_SPEC["workload"]["num_tasks"]


#: The README's run (its "two-minute tour"): six policies, mean flow times from 2.8 ms to 0.77 s.
README_SPEC: dict[str, Any] = {
    "workload": {"kind": "synthetic", "num_tasks": 2000, "seed": 7},
    "cluster": {"cpus": 8, "gpus": 4},
    "policies": ["round_robin", "random", "greedy", "heft", "learned", "oracle"],
}


def test_the_leaderboard_fits_1400_px_with_energy_in_kilojoules(new_page, team_a, worker):
    run_id = submit_run(team_a, README_SPEC)
    assert wait_run(team_a, run_id)["status"] == "succeeded"
    results = team_a.get(f"/api/v1/runs/{run_id}/results").json()["results"]
    page = new_page(width=1400)
    log_in(page, TEAM_A_KEY)
    page.page.goto(f"/runs/{run_id}")

    box = page.page.evaluate(
        "(b => [b.scrollWidth, b.clientWidth])"
        "(document.getElementById('leaderboard').parentElement)"
    )
    assert box[0] <= box[1], f"the leaderboard is {box[0]} px wide in a box of {box[1]} px"
    headers = [" ".join(h.split()) for h in page.page.locator("#leaderboard th").all_inner_texts()]
    assert headers[-1] == "gap to oracle" and "energy (kJ)" in headers
    right = page.page.evaluate(
        "document.querySelector('#leaderboard th:last-child').getBoundingClientRect().right"
    )
    assert right <= 1400, right  # in the viewport, not behind a scroll
    for result in results:
        energy = page.page.inner_text(
            f"#leaderboard tr[data-policy='{result['policy']}'] td[data-metric=energy]"
        )
        assert energy == number(result["energy"] / 1000), result["policy"]
    page.screenshot("run-page-1400")


def test_the_study_page_shows_one_interval_per_policy_in_every_cell(new_page, team_a, worker):
    study_id = run_study(team_a, STUDY_SPEC)
    statistics = team_a.get(f"/api/v1/studies/{study_id}/results").json()["statistics"]
    page = new_page()
    log_in(page, TEAM_A_KEY)
    page.page.goto(f"/studies/{study_id}")
    page.page.wait_for_selector("#heatmap .heatmaplayer")
    for cell in statistics["cells"]:
        figure = f"forest-{cell['cell']}"
        page.page.wait_for_selector(f"#{figure} .errorbar")
        title = page.page.text_content(f"#{figure} text.xtitle")
        assert title.startswith(RUN_METRICS[statistics["rank_by"]].label), title
        means = page.page.evaluate(f"document.getElementById('{figure}').data[0]")
        assert means["y"] == [p["policy"] for p in cell["policies"]]
        assert means["x"] == [p["metrics"][statistics["rank_by"]]["mean"] for p in cell["policies"]]
        # One drawn interval per policy (left: the mean's 95 % CI).
        drawn = "bars => bars.filter(b => b.getAttribute('d')).length"
        intervals = page.page.eval_on_selector_all(f"#{figure} .xy .errorbar path.xerror", drawn)
        assert intervals == len(cell["policies"]) == len(STUDY_SPEC["base"]["policies"])
        # Right: the paired difference to the best, with its interval, for every other policy.
        versus = page.page.evaluate(f"document.getElementById('{figure}').data[1]")
        for policy, plus, difference in zip(
            cell["policies"], versus["error_x"]["array"], versus["x"], strict=True
        ):
            if policy["policy"] == cell["best"]:
                assert (difference, plus) == (0, None)
            else:
                compared = policy["versus_best"]
                assert difference == compared["mean_difference"]
                assert plus == pytest.approx(compared["ci_high"] - compared["mean_difference"])
    page.screenshot("study-page")
    page.page.evaluate("window.scrollTo(0, 0)")
    page.screenshot("readme-study-page", full_page=False)

    page.page.goto("/studies")
    assert page.page.get_attribute(f"tr[data-study='{study_id}'] .live", "data-status") == (
        "succeeded"
    )


def test_a_forest_plot_of_the_readme_policies_keeps_the_best_three_apart(new_page, team_a, worker):
    """The README's policies' mean flow times span 2.8 ms to 0.77 s: on a linear axis oracle,
    heft and learned would sit within a few pixels of each other at 0."""
    spec = {
        "name": "readme policies",
        "base": {**README_SPEC, "workload": {**README_SPEC["workload"], "num_tasks": 500}},
        "grid": {},
        "repetitions": 3,
    }
    study_id = run_study(team_a, spec)
    page = new_page(width=1400)
    log_in(page, TEAM_A_KEY)
    page.page.goto(f"/studies/{study_id}")
    page.page.wait_for_selector("#forest-0 .errorbar")
    # Where each policy's mean is drawn: its marker's left edge on the page, px.
    drawn = page.page.eval_on_selector_all(
        "#forest-0 .xy .points path.point",
        "points => points.map(p => p.getBoundingClientRect().x)",
    )
    policies = page.page.evaluate("document.getElementById('forest-0').data[0].y")
    at = dict(zip(policies, drawn, strict=True))
    best_three = sorted(at[p] for p in ("oracle", "heft", "learned"))
    assert min(b - a for a, b in itertools.pairwise(best_three)) > 5, at
    assert page.page.evaluate("document.getElementById('forest-0')._fullLayout.xaxis.type") == (
        "log"
    )
    assert page.page.text_content("#forest-0 text.xtitle").startswith("mean flow time (s)")
    page.screenshot("study-page-1400")


def test_another_tenants_run_is_not_visible(new_page, team_a, worker):
    run_id = submit_run(team_a, {**RUN_SPEC, "workload": {"kind": "synthetic", "num_tasks": 50}})
    wait_run(team_a, run_id)

    page = new_page()
    log_in(page, TEAM_B_KEY)
    assert page.page.query_selector(f"tr[data-run='{run_id}']") is None
    assert "No runs" in page.page.inner_text("main")
    page.expect_error("status of 404")
    response = page.page.goto(f"/runs/{run_id}")
    assert response.status == 404
    assert "no run" in page.page.inner_text("main")
    charts = page.page.request.get(f"/runs/{run_id}/charts/heft")
    assert charts.status == 404

    admin = new_page()
    log_in(admin, TEST_API_KEY)
    assert admin.page.query_selector(f"tr[data-run='{run_id}']") is not None
    admin.page.select_option("select[name=status]", "failed")  # the filter applies on change
    admin.page.wait_for_url("**/?status=failed")
    assert admin.page.query_selector(f"tr[data-run='{run_id}']") is None
    admin.page.select_option("select[name=status]", "succeeded")
    admin.page.wait_for_url("**/?status=succeeded")
    assert admin.page.query_selector(f"tr[data-run='{run_id}']") is not None


def test_the_models_and_queues_pages_show_versions_jobs_queues_and_workers(new_page, http, worker):
    page = new_page()
    log_in(page, TEST_API_KEY)
    page.page.goto("/queues")
    depths = page.page.inner_text("#queue-depths")
    assert "simulations" in depths and "training" in depths
    wait_until(lambda: _worker_listed(page, worker.hostname), 60, "the worker listed")
    assert page.page.get_attribute("main a[href*='5555']", "href").endswith(":5555")
    page.page.goto("/models")
    assert "Retraining jobs" in page.page.inner_text("main")


def _worker_listed(page: Any, hostname: str) -> bool:
    page.page.goto("/queues")
    return hostname in page.page.inner_text("main")
