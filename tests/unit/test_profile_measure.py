"""`hms profile measure` (app/cli/measure/, app/cli/profile.py): every kernel of the three tiled
factorizations computes the right thing and is timed, alone and with all cores busy, and the
profile written has every field of schema_version 1 (/tmp/profile-schema.md) with its type."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from app.cli.main import main
from app.cli.measure.contention import BusyCores
from app.cli.measure.kernels import FACTORIZATIONS, KERNELS
from app.cli.measure.profile import measure_profile, plan_for
from app.cli.measure.timing import Budget, TimingStats, time_cell
from app.profilespec import ProfileSpec

SCHEMA_KERNELS = {"gemm", "syrk", "trsm", "potrf", "getrf", "geqrt", "tpqrt", "ormqr", "tpmqrt"}
TINY = plan_for(thorough=False, sizes=(8, 16), repeats=2, processes=2)


def check_profile(doc: dict) -> None:
    """A valid profile (app.profilespec, what the API and the truth read), of a measurement:
    provenance with the command, the CPU only, every timing with its spread and quantiles."""
    spec = ProfileSpec.model_validate(doc)
    json.dumps(doc, allow_nan=False)  # plain JSON: no NaN or infinity
    assert spec.provenance.source == "measured"
    assert spec.provenance.command is not None
    assert spec.provenance.command.startswith("hms profile measure")
    assert {d.kind for d in spec.devices} == {"cpu"} and spec.links == []
    for t in doc["timings"]:
        assert t["kernel"] in SCHEMA_KERNELS and t["contention"] in {"alone", "all_busy"}
        assert t["repeats"] >= 1 and t["std_s"] >= 0 and t["quantiles_s"] is not None
    profile = spec.to_profile()
    for t in doc["timings"]:
        assert profile.time(t["kernel"], "cpu", t["size"], t["contention"]) == t["mean_s"]


@pytest.mark.parametrize("size", [8, 16, 40])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_each_kernel_computes_its_tile_operation(name, size):
    kernel = KERNELS[name]
    pristine = kernel.operands(size, np.random.default_rng(1))
    copies = [np.array(op) for op in pristine]
    assert kernel.residual(pristine, kernel.call(kernel.fresh(pristine))) < 1e-12
    # Fresh copies protected the pristine operands from the call's overwriting.
    assert all(np.array_equal(a, b) for a, b in zip(copies, pristine, strict=True))


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_a_residual_rejects_an_output_that_did_no_work(name):
    kernel = KERNELS[name]
    pristine = kernel.operands(16, np.random.default_rng(2))
    output = kernel.call(kernel.fresh(pristine))
    untouched = kernel.fresh(pristine)  # the overwritten operands as they were before the call
    parts = list(output) if isinstance(output, tuple) else [output]
    for position, index in enumerate(kernel.overwritten):
        parts[position] = untouched[index]
    fake = tuple(parts) if isinstance(output, tuple) else parts[0]
    assert kernel.residual(pristine, fake) > 1e-3


def test_the_factorizations_use_the_schema_kernels():
    assert set(KERNELS) == SCHEMA_KERNELS
    assert {k for ks in FACTORIZATIONS.values() for k in ks} == SCHEMA_KERNELS
    assert FACTORIZATIONS["lu"] == ("getrf", "trsm", "gemm")


def test_a_cell_stops_at_its_budget_but_not_before_min_repeats():
    kernel = KERNELS["gemm"]
    pristine = kernel.operands(8, np.random.default_rng(0))
    assert time_cell(kernel, pristine, Budget(1, 3, 3, 10.0)).size == 3
    assert time_cell(kernel, pristine, Budget(0, 4, 50, 0.0)).size == 4
    assert time_cell(kernel, pristine, Budget(0, 1, 7, 60.0)).size == 7


def test_stats_are_seconds_with_ordered_quantiles():
    stats = TimingStats.of(np.array([3e-6, 1e-6, 2e-6, 10e-6]))
    assert stats.repeats == 4 and math.isclose(stats.mean_s, 4e-6)
    assert stats.p05_s <= stats.p50_s <= stats.p95_s and stats.std_s > 0
    assert TimingStats.of(np.array([1e-6])).std_s == 0.0


def test_busy_cores_time_every_process():
    with BusyCores(2) as busy:
        times = busy.run("potrf", 16, repeats=3, warmup=1)
    assert times.shape == (6,) and (times > 0).all()


def test_a_tiny_profile_has_every_kernel_alone_and_all_busy():
    doc = measure_profile(TINY, "tiny-test", "hms profile measure --sizes 8,16 --repeats 2")
    check_profile(doc)
    cells = {(t["kernel"], t["size"], t["contention"]): t for t in doc["timings"]}
    for kernel in SCHEMA_KERNELS:
        for size in (8, 16):
            assert cells[(kernel, size, "alone")]["repeats"] == 2
            assert cells[(kernel, size, "all_busy")]["repeats"] == 2 * 2  # 2 processes x 2


def test_hms_profile_measure_writes_the_profile(tmp_path):
    out = tmp_path / "p.json"
    args = ["profile", "measure", "--sizes", "16,8", "--repeats", "2", "--processes", "2"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--name", "ci-box"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert "No CUDA GPU found" in result.stderr
    doc = json.loads(out.read_text())
    check_profile(doc)
    assert doc["name"] == "ci-box"
    assert doc["provenance"]["command"] == (
        f"hms profile measure --out {out} --name ci-box --sizes 8,16 --repeats 2 --processes 2"
    )
    assert sorted({t["size"] for t in doc["timings"]}) == [8, 16]


def test_a_bad_profile_name_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["profile", "measure", "--name", "Bad Name"])
    assert result.exit_code == 2 and "--name" in result.output
