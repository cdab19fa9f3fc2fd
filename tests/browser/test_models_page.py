"""The Models page's kernel performance models in Chromium: a section per profile and contention
with each model's newest fit and its predictions beside the profile's measured means. The runs
execute in-process (services.runs.execute_run), decided by `dmda` with the run's kernel model."""

from app.runspec import RunSpec
from app.services import runs
from app.tenancy import Tenant
from tests.browser.conftest import log_in
from tests.conftest import KERNEL_PROFILE as PROFILE
from tests.conftest import TEST_API_KEY
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
