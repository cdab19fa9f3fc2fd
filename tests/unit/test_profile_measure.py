"""`hms profile measure` (app/cli/measure/, app/cli/profile.py): every kernel of the three tiled
factorizations computes the right thing and is timed, alone and with all cores busy, and the
profile written has every field of schema_version 1 (/tmp/profile-schema.md) with its type."""

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner

from app.cli.main import main
from app.cli.measure.contention import BusyCores
from app.cli.measure.kernels import FACTORIZATIONS, KERNELS
from app.cli.measure.profile import measure_profile, plan_for
from app.cli.measure.timing import (
    Budget,
    ColdOperands,
    TimingStats,
    WarmOperands,
    last_level_cache_bytes,
    operands_for,
    time_cell,
)
from app.profilespec import ProfileSpec

SCHEMA_KERNELS = {"gemm", "syrk", "trsm", "potrf", "getrf", "geqrt", "tpqrt", "ormqr", "tpmqrt"}
TINY = dataclasses.replace(
    plan_for(thorough=False, sizes=(8, 16), repeats=2, processes=2), pool_bytes=1 << 20
)


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
    for operands in (WarmOperands(kernel, pristine), ColdOperands(kernel, pristine, 1 << 16)):
        assert time_cell(kernel, operands, Budget(1, 3, 3, 10.0)).size == 3
        assert time_cell(kernel, operands, Budget(0, 4, 50, 0.0)).size == 4
        assert time_cell(kernel, operands, Budget(0, 1, 7, 60.0)).size == 7


def test_stats_are_seconds_with_ordered_quantiles():
    stats = TimingStats.of(np.array([3e-6, 1e-6, 2e-6, 10e-6]))
    assert stats.repeats == 4 and math.isclose(stats.mean_s, 4e-6)
    assert stats.p05_s <= stats.p50_s <= stats.p95_s and stats.std_s > 0
    assert TimingStats.of(np.array([1e-6])).std_s == 0.0


def test_busy_cores_time_every_process():
    with BusyCores(2) as busy:
        times = busy.run("potrf", 16, repeats=3, warmup=1)
        cold = busy.run("gemm", 16, repeats=4, warmup=1, pool_bytes=1 << 18)
    assert times.shape == (6,) and (times > 0).all()
    assert cold.shape == (8,) and (cold > 0).all()


def test_a_tiny_profile_has_every_kernel_alone_and_all_busy():
    doc = measure_profile(TINY, "tiny-test", "hms profile measure --sizes 8,16 --repeats 2")
    check_profile(doc)
    assert doc["measurement"] == {
        "operands": "cold",
        "pool_bytes": 1 << 20,
        "last_level_cache_bytes": last_level_cache_bytes(),
    }
    assert "pool of 1 MiB of distinct operand sets" in doc["description"]
    assert re.search(r"load average before measuring: \d+\.\d\d, after: \d+\.\d\d\.$",
                     doc["description"])  # fmt: skip
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
    assert doc["measurement"]["operands"] == "cold"
    assert doc["measurement"]["pool_bytes"] == 2 * last_level_cache_bytes()


def test_hms_profile_measure_warm_times_operands_in_cache(tmp_path):
    out = tmp_path / "p.json"
    args = ["profile", "measure", "--sizes", "8", "--repeats", "1", "--processes", "1", "--warm"]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    check_profile(doc)
    assert doc["measurement"]["operands"] == "warm" and doc["measurement"]["pool_bytes"] is None
    assert doc["provenance"]["command"].endswith("--warm")
    assert "same operands" in doc["description"]


def test_a_bad_profile_name_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["profile", "measure", "--name", "Bad Name"])
    assert result.exit_code == 2 and "--name" in result.output


# Cold operands: a pool larger than the last-level cache --------------------------------------


def _fake_sysfs(root, caches):
    for i, (level, kind, size) in enumerate(caches):
        index = root / f"index{i}"
        index.mkdir()
        (index / "level").write_text(f"{level}\n")
        (index / "type").write_text(f"{kind}\n")
        (index / "size").write_text(f"{size}\n")
    return root


def test_the_last_level_cache_is_the_deepest_data_cache_sysfs_names(tmp_path):
    caches = [(1, "Data", "32K"), (1, "Instruction", "64K"), (2, "Unified", "512K"),
              (3, "Unified", "32768K")]  # fmt: skip
    assert last_level_cache_bytes(_fake_sysfs(tmp_path, caches)) == 32 << 20
    two = tmp_path / "two"
    two.mkdir()
    assert last_level_cache_bytes(_fake_sysfs(two, caches[:3])) == 512 << 10


def test_without_sysfs_the_cache_size_still_comes_from_somewhere(tmp_path):
    assert last_level_cache_bytes(tmp_path / "absent") > 0


def _addresses(ops):
    return {op.__array_interface__["data"][0] for op in ops}


def test_cold_operands_fill_the_pool_with_distinct_sets_used_in_turn():
    kernel = KERNELS["gemm"]
    pristine = kernel.operands(16, np.random.default_rng(0))  # 3 tiles of 2 KiB
    pool = ColdOperands(kernel, pristine, 60_000)
    assert len(pool.sets) == 10  # ceil(60000 / 6144)
    seen = [pool.next() for _ in range(len(pool.sets))]
    addresses = [_addresses(ops) for ops in seen]
    assert all(len(a) == 3 for a in addresses)
    assert len(set().union(*addresses)) == 3 * len(pool.sets)  # no memory shared between sets
    assert all(op.flags.f_contiguous for ops in seen for op in ops)  # the wrappers copy nothing
    assert _addresses(pool.next()) == addresses[0]  # then round again, in the same order


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_a_cold_set_is_restored_after_its_call_so_every_call_does_the_right_work(name):
    kernel = KERNELS[name]
    pristine = kernel.operands(16, np.random.default_rng(3))
    pool = ColdOperands(kernel, pristine, 1)  # the smallest pool: two sets
    for _ in range(5):  # each set called, overwritten, restored, called again
        ops = pool.next()
        for op, original in zip(ops, pristine, strict=True):
            assert np.array_equal(op, original)
        assert kernel.residual(pristine, kernel.call(ops)) < 1e-12


def test_warm_operands_are_the_same_tiles_every_call_and_cold_ones_are_not():
    kernel = KERNELS["syrk"]
    pristine = kernel.operands(16, np.random.default_rng(0))
    warm = operands_for(kernel, pristine, 0)
    cold = operands_for(kernel, pristine, 1 << 16)
    assert isinstance(warm, WarmOperands) and isinstance(cold, ColdOperands)
    assert warm.next()[0] is pristine[0] and warm.next()[0] is pristine[0]  # read-only: shared
    assert _addresses(cold.next()).isdisjoint(_addresses(cold.next()))
