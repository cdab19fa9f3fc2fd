"""`hms profile list | show | upload` against the API under uvicorn and the real database: a
table by default, exactly the API's JSON with `--json`; an upload prints the profile's name."""

from __future__ import annotations

import json
from importlib import resources

import httpx
import pytest
from click.testing import CliRunner, Result

from app.cli.main import main
from app.profilespec import shipped_profile_names
from tests.conftest import TEAM_A_KEY

AUTH = {"X-API-Key": TEAM_A_KEY}
SHIPPED = "v100-skylake-mcsweeney2020"


@pytest.fixture
def http(api):
    with httpx.Client(base_url=api.url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def hms(api):
    def invoke(*args: str) -> Result:
        flags = ["--api", api.url, "--key", TEAM_A_KEY]
        return CliRunner().invoke(main, ["profile", *args, *flags], catch_exceptions=False)

    return invoke


@pytest.fixture
def profile_file(tmp_path):
    text = resources.files("app.profiles").joinpath(f"{SHIPPED}.json").read_text()
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({**json.loads(text), "name": "lab-v100"}))
    return path


def test_upload_prints_the_name_and_list_shows_it_beside_the_shipped_ones(hms, http, profile_file):
    uploaded = hms("upload", str(profile_file))
    assert uploaded.exit_code == 0 and uploaded.stdout == "lab-v100\n"
    document = http.get("/api/v1/profiles").json()
    assert json.loads(hms("list", "--json").stdout) == document
    lines = hms("list").stdout.splitlines()
    assert lines[0].split() == [
        "name", "owner", "source", "date", "kernels", "devices", "sizes", "timings"
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert list(rows) == [*shipped_profile_names(), "lab-v100"]  # shipped first, then own
    assert rows[SHIPPED] == [SHIPPED, "shipped", "published", "2020",
                             "gemm,potrf,syrk,trsm", "cpu,gpu", "32-1024", "48"]  # fmt: skip
    assert rows["lab-v100"][:2] == ["lab-v100", "team-a"]


def test_show_prints_mean_milliseconds_per_kernel_device_and_size(hms, http):
    document = http.get(f"/api/v1/profiles/{SHIPPED}").json()
    assert json.loads(hms("show", SHIPPED, "--json").stdout) == document
    lines = hms("show", SHIPPED).stdout.splitlines()
    assert lines[0].split() == ["name", SHIPPED]
    header = lines.index("mean ms per call, by tile size b") + 1
    assert lines[header].split() == ["kernel", "device", "contention",
                                     "32", "64", "128", "256", "512", "1024"]  # fmt: skip
    rows = {tuple(line.split()[:2]): line.split()[3:] for line in lines[header + 2 :]}
    assert len(rows) == 8  # 4 kernels x 2 devices, alone
    assert rows["gemm", "gpu"][0] == "0.02941"  # 29.41 us at b=32 (McSweeney et al., table)
    assert rows["gemm", "gpu"][-1] == "3.044"  # 3043.6 us at b=1024


def test_errors_exit_with_the_apis_answer(hms, profile_file, tmp_path):
    assert hms("upload", str(profile_file)).exit_code == 0
    again = hms("upload", str(profile_file))
    assert again.exit_code == 1 and again.stderr.endswith(" (HTTP 409)\n")
    missing = hms("show", "nothing-here")
    assert missing.exit_code == 1 and "no kernel profile is named 'nothing-here'" in missing.stderr
    invalid = json.loads(profile_file.read_text()) | {"name": "bad"}
    invalid["timings"][3]["device"] = "tpu"
    (tmp_path / "bad.json").write_text(json.dumps(invalid))
    refused = hms("upload", str(tmp_path / "bad.json"))
    assert refused.exit_code == 1 and refused.stderr.startswith("Error: timings.3.device: ")
    assert refused.stderr.endswith(" (HTTP 422)\n") and "{" not in refused.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    refused = hms("upload", str(broken))
    assert refused.exit_code == 1 and "is not a JSON document" in refused.stderr
