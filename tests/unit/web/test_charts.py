from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from api.web.charts import (
    acceleration_curve,
    accelerations,
    clean,
    forest_plot,
    grid_heatmap,
    holdout_over_time,
    kernel_timings,
    learning_curve,
    spread_caption,
)
from app.profilespec import QuantilesSpec, TimingSpec


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


#: The README's run (fresh clone, 2026-12-06): each policy's mean flow time, seconds.
README_FLOW_TIMES = {
    "oracle": 0.0028,
    "heft": 0.0046,
    "learned": 0.0055,
    "greedy": 0.0189,
    "round_robin": 0.7100,
    "random": 0.7688,
}


def flow_time_cell(means, metric="mean_flow_time"):
    """A cell whose policies have these means (best first), each interval ±10 %."""
    best = min(means.values())
    policies = []
    for policy, mean in means.items():
        difference = mean - best
        versus = {
            "mean_difference": difference,
            "ci_low": 0.9 * difference,
            "ci_high": 1.1 * difference,
        }
        policies.append(
            {
                "policy": policy,
                "wins": 0,
                "metrics": {metric: summary(mean, 0.9 * mean, 1.1 * mean)},
                "versus_best": None if mean == best else versus,
            }
        )
    return {
        "cell": 0,
        "values": {},
        "runs": {},
        "best": policies[0]["policy"],
        "policies": policies,
    }


def test_a_forest_plot_spanning_more_than_a_decade_is_drawn_on_log_axes():
    layout = forest_plot(flow_time_cell(README_FLOW_TIMES), "mean_flow_time")["layout"]
    assert layout["xaxis"]["type"] == layout["xaxis2"]["type"] == "log"
    assert layout["xaxis"]["title"]["text"].startswith("mean flow time (s)")
    assert "log scale" in layout["xaxis"]["title"]["text"]
    assert (
        layout["xaxis2"]["title"]["text"]
        == "paired difference to the best (s), 95 % CI · log scale"
    )


def test_a_forest_plot_within_a_decade_keeps_linear_axes():
    close = {policy: mean for policy, mean in README_FLOW_TIMES.items() if mean < 0.02}
    layout = forest_plot(flow_time_cell(close), "mean_flow_time")["layout"]
    assert layout["xaxis"]["type"] == "linear"  # means 0.0028 to 0.0189 s: 6.75x
    assert layout["xaxis2"]["type"] == "linear"  # differences 0.0018 to 0.0161 s: 8.9x
    assert layout["xaxis"]["title"]["text"] == "mean flow time (s): mean, 95 % CI"


def test_a_forest_plot_of_energy_is_in_kilojoules():
    joules = {"oracle": 320.0, "heft": 330.0}
    figure = forest_plot(flow_time_cell(joules, "energy"), "energy")
    means, versus = figure["data"]
    assert means["x"] == [0.32, 0.33] and versus["x"] == [0.0, pytest.approx(0.01)]
    assert means["error_x"]["array"] == [pytest.approx(0.032), pytest.approx(0.033)]
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("energy (kJ)")


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


def test_one_model_version_gets_a_day_of_time_a_curve_from_0_samples_and_errors_from_0():
    (only,) = versions = [version(1, 3, 32000, 0.25)]
    over_time = holdout_over_time(versions)["layout"]
    low, high = (datetime.fromisoformat(end) for end in over_time["xaxis"]["range"])
    assert high - low == timedelta(days=1) and low < only.trained_at < high
    curve = learning_curve(versions)["layout"]
    assert curve["xaxis"]["rangemode"] == "tozero"
    assert over_time["yaxis"]["rangemode"] == curve["yaxis"]["rangemode"] == "tozero"


def test_versions_days_apart_keep_plotlys_own_time_range():
    versions = [version(1, 1, 2000, 0.5), version(2, 5, 4000, 0.3)]
    assert "range" not in holdout_over_time(versions)["layout"]["xaxis"]


def test_clean_makes_non_finite_numbers_null():
    assert clean({"a": [float("nan"), 1.0, float("inf")], "b": (2,)}) == {
        "a": [None, 1.0, None],
        "b": [2],
    }


def timing(device, size, mean, std=None, quantiles=None, contention="alone", kernel="gemm"):
    return TimingSpec(
        kernel=kernel,
        device=device,
        size=size,
        contention=contention,
        repeats=10,
        mean_s=mean,
        std_s=std,
        quantiles_s=quantiles
        and QuantilesSpec(p05=quantiles[0], p50=quantiles[1], p95=quantiles[2]),
    )


def test_kernel_timings_are_drawn_log_log_with_a_bar_per_point_of_the_spread_it_has():
    timings = [
        timing("gpu", 128, 2e-5, std=1e-6),
        timing("gpu", 64, 1e-5, std=2e-6),
        timing("cpu", 64, 4e-4, quantiles=(3e-4, 3.5e-4, 6e-4)),
        timing("cpu", 64, 5e-4, quantiles=(4e-4, 4.5e-4, 9e-4), contention="all_busy"),
        timing("cpu", 128, 3e-3),
    ]
    figure = kernel_timings("gemm", timings)
    assert figure["layout"]["xaxis"]["type"] == figure["layout"]["yaxis"]["type"] == "log"
    gpu, cpu, busy = figure["data"]
    assert [trace["name"] for trace in figure["data"]] == ["gpu", "cpu", "cpu, all busy"]
    # gpu: mean +- std, by size; cpu: the median with its 5th..95th percentiles, none at 128.
    assert (gpu["x"], gpu["y"]) == ([64, 128], [1e-5, 2e-5])
    assert gpu["error_y"]["array"] == gpu["error_y"]["arrayminus"] == [2e-6, 1e-6]
    assert cpu["y"] == [3.5e-4, 3e-3]
    assert cpu["error_y"]["array"] == [pytest.approx(2.5e-4), None]
    assert cpu["error_y"]["arrayminus"] == [pytest.approx(0.5e-4), None]
    assert busy["line"]["dash"] == "dot" and busy["line"]["color"] == cpu["line"]["color"]
    assert spread_caption(timings) == (
        "gpu: mean, bars ± 1 standard deviation; cpu: median and 5th to 95th percentile where "
        "given, else mean ± 1 standard deviation; cpu, all busy: median, bars 5th to 95th "
        "percentile"
    )


def test_a_series_without_any_spread_draws_no_error_bars_and_says_so():
    (trace,) = kernel_timings("potrf", [timing("cpu", 32, 1e-5)])["data"]
    assert trace["error_y"]["visible"] is False
    assert spread_caption([timing("cpu", 32, 1e-5)]) == "cpu: mean only (no spread given)"


def test_acceleration_is_the_cpu_mean_over_the_other_devices_at_the_sizes_both_timed_alone():
    timings = [
        timing("cpu", 32, 1e-5),
        timing("cpu", 64, 8e-5),
        timing("cpu", 64, 9e-5, contention="all_busy"),
        timing("cpu", 128, 6.4e-4),
        timing("gpu", 64, 2e-5),
        timing("gpu", 128, 1e-5, std=1e-6),
        timing("gpu", 256, 2e-5),
    ]
    assert accelerations(timings) == {"gpu": [(64, 4.0), (128, pytest.approx(64.0))]}
    figure = acceleration_curve("gemm", timings)
    (curve,) = figure["data"]
    assert (curve["name"], curve["x"], curve["y"]) == ("cpu / gpu", [64, 128], [4.0, 64.0])
    assert figure["layout"]["xaxis"]["type"] == "log"
    (break_even,) = figure["layout"]["shapes"]
    assert break_even["y0"] == break_even["y1"] == 1


def test_no_acceleration_without_both_a_cpu_and_another_kind():
    cpu_only = [timing("cpu", 32, 1e-5), timing("cpu", 64, 8e-5)]
    assert accelerations(cpu_only) == {} and acceleration_curve("gemm", cpu_only) is None
    gpu_only = [timing("gpu", 32, 1e-5)]
    assert acceleration_curve("gemm", gpu_only) is None
    disjoint = [timing("cpu", 32, 1e-5), timing("gpu", 64, 1e-5)]
    assert acceleration_curve("gemm", disjoint) is None
