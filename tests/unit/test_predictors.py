"""bench/predictors.py: the predictor contest's draws, its scoring and its honesty rules."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from app.profilespec import load_shipped_profile

EPYC = "epyc-2c-vm-2026-12"  # measured 32..512: the contest's 768 and 1024 cannot be drawn


@pytest.fixture
def predictors(monkeypatch):
    monkeypatch.syspath_prepend("bench")
    return importlib.import_module("predictors")


def test_sizes_outside_the_profile_are_not_drawn_and_are_said_to_be_skipped(predictors):
    profile = load_shipped_profile(EPYC).to_profile()
    test = predictors.draw(profile, predictors.TEST_SIZES, 2, seed=1)
    assert set(test.size.tolist()) == {96, 128, 192, 256, 384, 512}
    lines = predictors.report(EPYC, repeats=10, seed=0)
    assert any(line.startswith("Skipped test sizes") and "768, 1024" in line for line in lines)


def test_the_draws_are_seeded_and_fresh_for_the_test(predictors):
    profile = load_shipped_profile(EPYC).to_profile()
    first = predictors.draw(profile, (128, 256), 5, seed=0)
    assert np.array_equal(first.seconds, predictors.draw(profile, (128, 256), 5, 0).seconds)
    assert not np.array_equal(first.seconds, predictors.draw(profile, (128, 256), 5, 1).seconds)


def test_history_is_not_scored_where_it_has_no_answer(predictors):
    profile = load_shipped_profile(EPYC).to_profile()
    results = predictors.contest(profile, repeats=10, seed=0)
    seen = predictors.pooled(results["history"], lambda k, d, b: b in predictors.TRAIN_SIZES)
    unseen = predictors.pooled(results["history"], lambda k, d, b: b not in (128, 256, 512))
    kernels = len(predictors.pairs(profile))
    assert seen[1:] == (3 * 10 * kernels, 0)
    assert np.isnan(unseen[0]) and unseen[1:] == (0, 3 * 10 * kernels)
    exact = predictors.pooled(results["exact mean"], lambda k, d, b: True)
    assert exact[1:] == (6 * 10 * kernels, 0)


def test_a_perfect_prediction_scores_zero_and_a_double_scores_one_hundred(predictors):
    from app.ml.perfmodels import Observations

    test = Observations.of("gemm", [128, 128], "cpu", [1.0, 2.0])
    perfect = predictors.score(lambda k, b, d: np.array([1.0]), test)
    assert list(perfect["gemm", "cpu", 128].errors) == [0.0, 50.0]
    assert (
        predictors.score(lambda k, b, d: np.array([np.nan]), test)["gemm", "cpu", 128].unanswered
        == 2
    )
