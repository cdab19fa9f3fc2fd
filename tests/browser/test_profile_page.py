"""A kernel profile's page in the browser at 1400 px: every kernel's timing chart draws its
error bars, every acceleration chart draws, and nothing is wider than the window or its box."""

from __future__ import annotations

import json
from importlib import resources

from tests.browser.conftest import log_in
from tests.conftest import TEAM_A_KEY

V100 = "v100-skylake-mcsweeney2020"
WIDTH = 1400


def test_the_v100_profile_page_draws_error_bars_and_accelerations_without_overflow(new_page, http):
    document = json.loads(resources.files("app.profiles").joinpath(f"{V100}.json").read_text())
    kernels = sorted({t["kernel"] for t in document["timings"]})
    page = new_page()
    page.page.set_viewport_size({"width": WIDTH, "height": 1000})
    log_in(page, TEAM_A_KEY)
    page.page.click("header nav a[href='/profiles']")
    page.page.click(f"tr[data-profile='{V100}'] a")
    page.page.wait_for_url(f"**/profiles/{V100}")

    for kernel in kernels:
        timings = f"#timings-{kernel}"
        page.page.wait_for_selector(f"{timings} .scatterlayer .trace")
        # The GPU series' bars: one drawn bar per size (the CPU's source gives no spread).
        gpu_sizes = [
            t["size"] for t in document["timings"] if (t["kernel"], t["device"]) == (kernel, "gpu")
        ]
        bars = page.page.eval_on_selector_all(
            f"{timings} .errorbar path.yerror",
            "bars => bars.filter(b => b.getAttribute('d')).length",
        )
        assert bars == len(gpu_sizes), kernel
        axes = page.page.evaluate(
            f"(() => {{ const l = document.querySelector('{timings}')._fullLayout;"
            " return [l.xaxis.type, l.yaxis.type]; })()"
        )
        assert axes == ["log", "log"], kernel
        acceleration = f"#acceleration-{kernel}"
        page.page.wait_for_selector(f"{acceleration} .scatterlayer .trace .js-line")
        assert (
            page.page.text_content(f"{acceleration} .gtitle") == f"{kernel}: acceleration over cpu"
        )
        caption = page.page.inner_text(f"#kernel-{kernel} figure figcaption >> nth=0")
        assert "gpu: mean, bars ± 1 standard deviation" in caption

    overflow = page.page.evaluate(
        """() => {
          const wide = [];
          if (document.documentElement.scrollWidth > window.innerWidth) wide.push("page");
          document.querySelectorAll("main *").forEach((element) => {
            if (element.closest(".scroll, details:not([open])")) return;
            const box = element.getBoundingClientRect();
            if (box.width && box.right > window.innerWidth + 0.5)
              wide.push(element.id || element.tagName);
          });
          document.querySelectorAll("figure.chart").forEach((figure) => {
            const svg = figure.querySelector("svg.main-svg");
            if (svg.getBoundingClientRect().width > figure.getBoundingClientRect().width + 0.5)
              wide.push(figure.querySelector("[data-figure]").id);
          });
          return wide;
        }"""
    )
    assert overflow == []

    page.page.click("#kernel-gemm details summary")
    rows = page.page.query_selector_all("#kernel-gemm table.timings tbody tr")
    assert len(rows) == sum(t["kernel"] == "gemm" for t in document["timings"])
    page.screenshot("profile-page")
    page.page.click("#kernel-gemm details summary")  # closed again for the docs' shot
    # docs/dashboard-profile.png: from the top to the second kernel's charts.
    bottom = page.page.evaluate(
        "document.querySelector('#kernel-potrf details').getBoundingClientRect().top"
        " + window.scrollY"
    )
    page.screenshot("docs-profile-page", clip={"x": 0, "y": 0, "width": WIDTH, "height": bottom})
