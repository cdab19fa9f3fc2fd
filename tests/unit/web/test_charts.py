from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from api.web.charts import clean, forest_plot, grid_heatmap, holdout_over_time, learning_curve


def summary(mean, low, high):
    return {"n": 3, "mean": mean, "std": 1.0, "ci_low": low, "ci_high": high}


def cell(index, values, best_mean=1.0, runner_up_difference=0.5):
    return {
        "cell": index,
        "values": values,
        "runs": {"total": 3, "succeeded": 3, "failed": 0, "cancelled": 0},
        "best": "oracle",
        "policies": [
            {
                "policy": "oracle",
                "wins": 3,
                "metrics": {"makespan": summary(best_mean, best_mean - 0.1, best_mean + 0.2)},
                "versus_best": None,
            },
            {
                "policy": "heft",
                "wins": 0,
                "metrics": {"makespan": summary(1.5, 1.2, 1.9)},
                "versus_best": {
                    "metric": "makespan",
                    "mean_difference": runner_up_difference,
                    "ci_low": 0.25,
                    "ci_high": 0.75,
                },
            },
        ],
    }


def test_a_forest_plot_has_each_policys_interval_and_its_difference_to_the_best():
    means, versus = forest_plot(cell(0, {}), "makespan")["data"]
    assert means["y"] == ["oracle", "heft"] and means["x"] == [1.0, 1.5]
    assert means["error_x"]["array"] == pytest.approx([0.2, 0.4])
    assert means["error_x"]["arrayminus"] == pytest.approx([0.1, 0.3])
    assert versus["x"] == [0.0, 0.5]
    assert versus["error_x"]["array"] == [None, 0.25]


def test_the_heatmap_places_each_cell_by_its_grid_values():
    statistics = {
        "rank_by": "makespan",
        "cells": [
            cell(i, {"a": a, "b": b}, runner_up_difference=0.1 * (i + 1))
            for i, (a, b) in enumerate([(1, "x"), (1, "y"), (2, "x"), (2, "y")])
        ],
    }
    (trace,) = grid_heatmap(statistics, ["a", "b"])["data"]
    assert (trace["x"], trace["y"]) == (["1", "2"], ["x", "y"])
    assert [row for row in trace["z"]] == [pytest.approx([0.1, 0.3]), pytest.approx([0.2, 0.4])]
    assert trace["text"] == [["oracle", "oracle"], ["oracle", "oracle"]]
    one_key = {"rank_by": "makespan", "cells": [cell(0, {"a": 1}), cell(1, {"a": 2})]}
    assert grid_heatmap(one_key, ["a"])["data"][0]["y"] == [""]
    assert grid_heatmap(statistics, []) is None
    assert grid_heatmap(statistics, ["a", "b", "c"]) is None


def version(number, trained, samples, mae, active=None, status="promoted"):
    metrics = {
        "candidate": {"ln_seconds": {"mae": mae, "r2": float("nan")}},
        "active_on_same_holdout": active and {"ln_seconds": {"mae": active}},
    }
    return SimpleNamespace(
        version=number,
        trained_at=datetime(2026, 11, trained, tzinfo=UTC),
        sample_count=samples,
        status=status,
        is_active=number == 2,
        metrics=metrics,
    )


def test_model_charts_plot_each_versions_holdout_error():
    versions = [version(2, 2, 4000, 0.3, active=0.5), version(1, 1, 2000, 0.5)]
    promoted, rejected, previous = holdout_over_time(versions)["data"]
    assert promoted["y"] == [0.5, 0.3] and rejected["y"] == []
    assert previous["y"] == [0.5] and promoted["text"] == ["v1", "v2 (active)"]
    (curve,) = learning_curve(versions)["data"]
    assert (curve["x"], curve["y"]) == ([2000, 4000], [0.5, 0.3])


def test_clean_makes_non_finite_numbers_null():
    assert clean({"a": [float("nan"), 1.0, float("inf")], "b": (2,)}) == {
        "a": [None, 1.0, None],
        "b": [2],
    }
