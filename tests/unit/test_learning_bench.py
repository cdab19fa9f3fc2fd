"""bench/learning.py: the schedule contest's quick mode prints a table per case, with finite
ratios, and says which combinations it left out and why."""

from __future__ import annotations

import importlib
import math
import re

import numpy as np
import pytest


@pytest.fixture
def learning(monkeypatch):
    monkeypatch.syspath_prepend("bench")
    return importlib.import_module("learning")


def ratios(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", line)]


def test_the_quick_contest_has_a_row_per_model_and_checkpoint_with_finite_ratios(learning):
    case = learning.Case("cholesky", "epyc-2c-vm-2026-12", 2, 0, tiles=3, test_sizes=(128, 192))
    lines, result = learning.report(case, [0, 1, 2], seeds=2)
    assert result is not None and result.seen == [128] and result.unseen == [192]
    rows = [line for line in lines if line.startswith("| ") and "|---" not in line]
    table = rows[1 : rows.index(next(r for r in rows if r.startswith("| dmda exact"))) + 1]
    models = {(r.split(" | ")[0][2:], r.split(" | ")[1]) for r in table}
    expected = {(learning.UNCALIBRATED, "0"), ("dmda exact", "—")}
    expected |= {(m, str(k)) for m in learning.MODEL_NAMES for k in (1, 2)}
    assert models == expected
    for row in table:
        numbers = ratios(row)
        assert len(numbers) >= 6 and all(math.isfinite(x) and x > 0 for x in numbers)
    assert any(line.startswith("Goal after 2 runs: **") for line in lines)
    assert any("The profile timed no GPU" in line for line in lines)


def test_a_case_the_profile_cannot_run_is_left_out_with_the_reason(learning):
    lu = learning.Case("lu", "v100-skylake-mcsweeney2020", 2, 1, tiles=3)
    lines, result = learning.report(lu, [0, 1], seeds=2)
    assert result is None
    assert any(line.startswith("Left out: the profile times no getrf") for line in lines)


def test_sizes_the_profile_did_not_measure_are_left_out_and_named(learning):
    case = learning.Case("cholesky", "epyc-2c-vm-2026-12", 2, 0, tiles=2)
    lines, result = learning.report(case, [0, 1], seeds=2)
    assert result is not None and result.unseen == [96, 192, 384]
    assert any(line.startswith("Left out: test sizes [768, 1024]") for line in lines)


def test_training_is_on_policy_run_zero_sees_nothing(learning):
    from app.runspec import kernel_profile

    case = learning.Case("cholesky", "epyc-2c-vm-2026-12", 2, 0, tiles=3)
    profile = kernel_profile(case.profile_name)
    training = learning.train(case, profile, "regression", [0, 1, 3])
    assert training.observations == {0: 0, 1: 10, 3: 30}  # 10 tasks a run, all whole
    assert np.isnan(training.models[0].predict("gemm", [128], "cpu")).all()
    assert np.isfinite(training.models[3].predict("gemm", [128, 192], "cpu")).all()


def test_the_quick_mode_prints_every_case_and_only_finite_ratios(learning, capsys):
    assert learning.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for case in learning.cases(quick=True):
        assert f"### {case.label}" in out
        assert f"| {case.workload} | `{case.profile_name}` |" in out  # its summary row
    assert "| lu | `v100-skylake-mcsweeney2020` | — | — | — | — | — | left out |" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "|---" not in line]
    data = [row for row in rows if not row.startswith("| model")]
    assert data and all(math.isfinite(x) for row in data for x in ratios(row.split(" | ", 1)[1]))


def test_the_contest_is_deterministic(learning):
    gpu = "v100-skylake-mcsweeney2020"
    case = learning.Case("synthetic", gpu, 2, 1, tasks=30, test_sizes=(128, 192))
    assert learning.report(case, [0, 1], seeds=2)[0] == learning.report(case, [0, 1], seeds=2)[0]
