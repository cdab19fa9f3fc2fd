"""The Models page's kernel performance models in Chromium: a section per profile and contention
with each model's newest fit and its predictions beside the profile's measured means. The runs
execute in-process (services.runs.execute_run), decided by `dmda` with the run's kernel model."""

from datetime import UTC, datetime, timedelta

from app.runspec import RunSpec
from app.services import runs, training
from app.settings import get_settings
from app.tenancy import Tenant
from tests.browser.conftest import log_in
from tests.conftest import ADMIN, EXAMPLE_SPEC, TEST_API_KEY
from tests.conftest import KERNEL_PROFILE as PROFILE
from tests.fakes import RecordingQueue


def run(perf_model: str, tile_size: int) -> None:
    body = {
        "workload": {
            "kind": "tiled",
            "factorization": "cholesky",
            "tiles": 6,
            "tile_size": tile_size,
        },
        "cluster": {"cpus": 3, "gpus": 1, "profile": PROFILE},
        "policies": ["dmda", "cpu_only"],
        "perf_model": perf_model,
    }
    tenant = Tenant("tests", is_admin=True)
    run_id = runs.submit_run(tenant, RunSpec.model_validate(body), RecordingQueue()).run.id
    assert runs.execute_run(run_id) == runs.ExecutionOutcome.SUCCEEDED


def test_the_models_page_shows_the_kernel_models_fitted_on_the_runs(new_page, http):
    for tile_size in (128, 256, 512, 256, 128):
        run("history", tile_size)
    for model in ("regression", "nl_regression"):
        run(model, 256)
    page = new_page()
    log_in(page, TEST_API_KEY)
    page.page.goto("/models#kernel-models")
    section = page.page.locator(f"section.kernel-models[data-profile='{PROFILE}']")
    fits = section.locator("table.fits").inner_text()
    assert "history\tv5\t224" in fits and "nl_regression\tv1\t336" in fits
    header = section.locator("table.predictions thead").inner_text()
    assert "measured mean" in header and "nl_regression" in header
    rows = section.locator("table.predictions tbody tr").count()
    assert rows >= 3 * 4  # each observed kernel at the profile's sizes
    section.scroll_into_view_if_needed()
    page.screenshot("models-page-kernel-models")


def test_one_model_version_gets_sensible_axes(new_page, http, monkeypatch):
    """One version: a day of time around it, a learning curve from 0 samples, MAE from 0 (not
    nanoseconds of time, 31.999k to 32.0005k samples and MAE from -0.5)."""
    settings = get_settings()
    monkeypatch.setattr(settings, "samples_per_run", 400)
    monkeypatch.setattr(settings, "min_training_samples", 1000)
    monkeypatch.setattr(settings, "training_max_iter", 60)
    for seed in (1, 2):
        body = {**EXAMPLE_SPEC, "workload": {**EXAMPLE_SPEC["workload"], "seed": seed}}
        run_id = runs.submit_run(ADMIN, RunSpec.model_validate(body), RecordingQueue()).run.id
        assert runs.execute_run(run_id) == runs.ExecutionOutcome.SUCCEEDED
    job = training.request_retrain(ADMIN, RecordingQueue())
    training.execute_retrain(job.id)
    (only,) = training.list_versions()
    page = new_page(width=1400)
    log_in(page, TEST_API_KEY)
    page.page.goto("/models")
    page.page.wait_for_selector("#learning-curve .point")

    def axes(figure: str) -> dict:
        return page.page.evaluate(
            f"(l => ({{x: l.xaxis.range, y: l.yaxis.range}}))"
            f"(document.getElementById('{figure}')._fullLayout)"
        )

    over_time = axes("holdout-over-time")
    low, high = (datetime.fromisoformat(end).replace(tzinfo=UTC) for end in over_time["x"])
    assert high - low >= timedelta(hours=23), over_time["x"]
    curve = axes("learning-curve")
    assert curve["x"][0] <= 0 < only.sample_count < curve["x"][1]
    assert over_time["y"][0] == curve["y"][0] == 0
    page.screenshot("models-page-one-version")
