"""The dashboard's Profiles list and a profile's page in-process (TestClient), against the real
database: the shipped profiles and the viewer's own are listed and drawn, another tenant's and
an unknown name are the not-found page."""

import json
import re
from importlib import resources

import pytest
from fastapi.testclient import TestClient

from api.deps import SESSION_COOKIE
from api.main import app
from app.profilespec import shipped_profile_names
from tests.conftest import TEAM_A_KEY, TEAM_B_KEY

V100 = "v100-skylake-mcsweeney2020"
CPU_ONLY = "epyc-2c-vm-2026-12"


def shipped_document(name: str) -> dict:
    return json.loads(resources.files("app.profiles").joinpath(f"{name}.json").read_text())


def figures(page: str) -> dict[str, dict]:
    """Each drawn figure of a page by its element id (the JSON the page hands to Plotly)."""
    found = re.findall(r'<div class="[^"]*" id="([^"]+)" data-figure=\'([^\']*)\'', page)
    return {element: json.loads(_unescape(data)) for element, data in found}


def _unescape(text: str) -> str:
    for entity, char in (("&#39;", "'"), ("&#34;", '"'), ("&lt;", "<"), ("&gt;", ">")):
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")


@pytest.fixture
def team_a():
    with TestClient(app, cookies={SESSION_COOKIE: TEAM_A_KEY}) as client:
        yield client


@pytest.fixture
def team_b():
    with TestClient(app, cookies={SESSION_COOKIE: TEAM_B_KEY}) as client:
        yield client


def upload(client: TestClient, key: str, document: dict) -> None:
    answer = client.post("/api/v1/profiles", json=document, headers={"X-API-Key": key})
    assert answer.status_code == 201, answer.text


def test_the_list_shows_the_shipped_profiles_and_the_viewers_own_only(team_a, team_b):
    upload(team_a, TEAM_A_KEY, {**shipped_document(V100), "name": "lab-v100"})
    listed = team_a.get("/profiles")
    assert listed.status_code == 200
    rows = re.findall(r'<tr data-profile="([^"]+)"', listed.text)
    assert rows == [*shipped_profile_names(), "lab-v100"]
    assert 'href="/profiles/lab-v100"' in listed.text and '<a href="/profiles">' in listed.text
    others = team_b.get("/profiles")
    assert re.findall(r'<tr data-profile="([^"]+)"', others.text) == shipped_profile_names()


def test_the_v100_page_draws_each_kernels_timings_with_error_bars_and_its_acceleration(team_a):
    page = team_a.get(f"/profiles/{V100}")
    assert page.status_code == 200
    document = shipped_document(V100)
    assert document["provenance"]["citation"] in page.text.replace("&#34;", '"')
    assert document["provenance"]["machine"]["gpu"] in page.text
    drawn = figures(page.text)
    kernels = sorted({t["kernel"] for t in document["timings"]})
    assert sorted(drawn) == sorted(
        [f"timings-{k}" for k in kernels] + [f"acceleration-{k}" for k in kernels]
    )
    gemm = {t["device"]: [] for t in document["timings"]}
    for t in sorted(document["timings"], key=lambda t: t["size"]):
        if t["kernel"] == "gemm":
            gemm[t["device"]].append(t)
    cpu, gpu = drawn["timings-gemm"]["data"]
    assert gpu["y"] == [t["mean_s"] for t in gemm["gpu"]]
    assert gpu["error_y"]["array"] == [t["std_s"] for t in gemm["gpu"]]
    assert cpu["error_y"]["visible"] is False  # the source gives no spread for the CPU
    assert "gpu: mean, bars ± 1 standard deviation" in page.text
    assert "cpu: mean only (no spread given)" in page.text
    (ratio,) = drawn["acceleration-gemm"]["data"]
    assert ratio["y"] == pytest.approx(
        [c["mean_s"] / g["mean_s"] for c, g in zip(gemm["cpu"], gemm["gpu"], strict=True)]
    )
    assert 'id="links"' in page.text and "None recorded" in page.text
    assert page.text.count('<details class="numbers">') == len(kernels)


def test_a_cpu_only_profile_has_quantile_bars_and_no_acceleration(team_a):
    page = team_a.get(f"/profiles/{CPU_ONLY}")
    assert page.status_code == 200
    drawn = figures(page.text)
    assert drawn and not any(element.startswith("acceleration-") for element in drawn)
    alone, busy = drawn["timings-gemm"]["data"]
    assert (alone["name"], busy["name"]) == ("cpu", "cpu, all busy")
    assert all(value is not None for value in alone["error_y"]["array"])
    assert "median, bars 5th to 95th percentile" in page.text
    assert shipped_document(CPU_ONLY)["provenance"]["command"] in page.text


def test_an_uploaded_profile_shows_its_links_and_another_tenant_gets_the_not_found_page(
    team_a, team_b
):
    document = {
        **shipped_document(V100),
        "name": "lab-v100",
        "links": [
            {"source": "cpu", "target": "gpu", "latency_s": 8e-6, "bandwidth_bytes_per_s": 1.2e10},
            {"source": "gpu", "target": "cpu", "latency_s": 9e-6, "bandwidth_bytes_per_s": 1.1e10},
        ],
    }
    upload(team_a, TEAM_A_KEY, document)
    page = team_a.get("/profiles/lab-v100")
    assert page.status_code == 200
    links = page.text.split('<table id="links">')[1].split("</table>")[0]
    assert "8 µs" in links and "12 GB/s" in links and "9 µs" in links and "11 GB/s" in links
    hidden = team_b.get("/profiles/lab-v100")
    assert hidden.status_code == 404 and "Not found" in hidden.text
    unknown = team_a.get("/profiles/no-such-profile")
    assert unknown.status_code == 404 and "kernel profile" in unknown.text
    odd = team_a.get("/profiles/%3Cscript%3E")
    assert odd.status_code == 404 and "<script>" not in odd.text
