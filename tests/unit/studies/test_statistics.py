import gc
import json
import math
import weakref

import numpy as np
import pytest
from scipy import stats

from app.studies.statistics import (
    ROW_COLUMNS,
    RunRecord,
    compare_paired,
    count_wins,
    statistics_rows,
    streamed_statistics,
    study_statistics,
    summarize_metric,
)

# Three repetitions of one cell, two policies; heft is faster in every repetition.
HEFT = [10.0, 12.0, 17.0]
GREEDY = [11.0, 15.0, 18.5]


def succeeded(cell, repetition, results):
    return RunRecord(cell=cell, repetition=repetition, status="succeeded", results=results)


def failed(cell, repetition, status="failed"):
    return RunRecord(cell=cell, repetition=repetition, status=status, results={})


def two_policy_cell(cell=0, energy=(1.0, 2.0, 3.0)):
    return [
        succeeded(
            cell,
            r,
            {
                "heft": {"makespan": HEFT[r], "energy": energy[r]},
                "greedy": {"makespan": GREEDY[r], "energy": 2.0},
            },
        )
        for r in range(3)
    ]


def t_interval(values, confidence=0.95):
    values = np.asarray(values, dtype=float)
    n = len(values)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return values.mean() - half, values.mean() + half


def test_metric_summary_is_the_mean_sample_std_and_student_t_interval():
    summary = study_statistics(two_policy_cell(), [{"n": 50}], "makespan")
    heft = summary["cells"][0]["policies"][0]["metrics"]["makespan"]

    low, high = t_interval(HEFT)
    assert heft["n"] == 3
    assert heft["mean"] == pytest.approx(13.0)
    assert heft["std"] == pytest.approx(math.sqrt(13.0))  # squares 9 + 1 + 16 over 2
    assert heft["ci_low"] == pytest.approx(low)
    assert heft["ci_high"] == pytest.approx(high)


def test_the_confidence_level_sets_the_interval_width():
    summary = summarize_metric(HEFT, confidence=0.9)

    low, high = t_interval(HEFT, confidence=0.9)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))


def test_best_policy_has_lowest_mean_rank_metric_and_comes_first():
    cell = study_statistics(two_policy_cell(), [{"n": 50}], "makespan")["cells"][0]

    assert cell["best"] == "heft"
    assert [p["policy"] for p in cell["policies"]] == ["heft", "greedy"]
    assert cell["policies"][0]["versus_best"] is None


def test_another_rank_metric_picks_another_best():
    cell = study_statistics(two_policy_cell(energy=(3.0, 3.0, 3.0)), [{}], "energy")["cells"][0]

    assert cell["best"] == "greedy"


def test_difference_to_best_is_paired_with_scipy_p_values():
    cell = study_statistics(two_policy_cell(), [{"n": 50}], "makespan")["cells"][0]
    versus = cell["policies"][1]["versus_best"]

    differences = np.subtract(GREEDY, HEFT)  # 1, 3, 1.5
    low, high = t_interval(differences)
    assert versus["metric"] == "makespan"
    assert versus["n"] == 3
    assert versus["mean_difference"] == pytest.approx(11.0 / 6.0)
    assert (versus["ci_low"], versus["ci_high"]) == pytest.approx((low, high))
    assert versus["p_t"] == pytest.approx(stats.ttest_rel(GREEDY, HEFT).pvalue)
    assert versus["p_wilcoxon"] == pytest.approx(stats.wilcoxon(GREEDY, HEFT).pvalue)


def test_pairs_are_matched_by_repetition_not_by_position():
    # Repetition 1 of greedy is missing: pairs are repetitions 0 and 2 only.
    comparison = compare_paired({0: 11.0, 2: 18.5}, {0: 10.0, 1: 12.0, 2: 17.0})

    assert comparison["n"] == 2
    assert comparison["mean_difference"] == pytest.approx(1.25)
    assert comparison["p_t"] == pytest.approx(stats.ttest_rel([11.0, 18.5], [10.0, 17.0]).pvalue)


def test_identical_policies_have_p_values_of_one_and_a_zero_width_interval():
    comparison = compare_paired({0: 5.0, 1: 6.0, 2: 7.0}, {0: 5.0, 1: 6.0, 2: 7.0})

    assert comparison["mean_difference"] == 0.0
    assert (comparison["ci_low"], comparison["ci_high"]) == (0.0, 0.0)
    assert comparison["p_t"] == 1.0
    assert comparison["p_wilcoxon"] == 1.0


def test_a_constant_non_zero_difference_is_computed_without_raising():
    comparison = compare_paired({0: 6.0, 1: 7.0, 2: 8.0}, {0: 5.0, 1: 6.0, 2: 7.0})

    assert (comparison["ci_low"], comparison["ci_high"]) == (1.0, 1.0)
    assert comparison["p_t"] == 0.0
    assert comparison["p_wilcoxon"] == pytest.approx(stats.wilcoxon([1.0, 1.0, 1.0]).pvalue)


def test_a_single_pair_has_a_difference_but_no_interval_or_p_value():
    comparison = compare_paired({0: 6.0}, {0: 5.0})

    assert comparison == {
        "n": 1,
        "mean_difference": 1.0,
        "ci_low": None,
        "ci_high": None,
        "p_t": None,
        "p_wilcoxon": None,
    }


def test_zero_variance_gives_an_interval_of_the_mean():
    summary = summarize_metric([4.0, 4.0, 4.0])

    assert summary == {"n": 3, "mean": 4.0, "std": 0.0, "ci_low": 4.0, "ci_high": 4.0}


def test_one_sample_has_a_mean_but_no_std_or_interval():
    assert summarize_metric([4.0]) == {
        "n": 1,
        "mean": 4.0,
        "std": None,
        "ci_low": None,
        "ci_high": None,
    }


def test_tied_policies_all_get_the_win():
    wins = count_wins(
        {
            "heft": {0: 1.0, 1: 2.0, 2: 5.0},
            "greedy": {0: 1.0, 1: 3.0, 2: 4.0},
            "random": {0: 9.0, 1: 9.0, 2: 9.0},
        }
    )

    assert wins == {"heft": 2, "greedy": 2, "random": 0}


def test_wins_are_reported_per_policy():
    cell = study_statistics(two_policy_cell(), [{}], "makespan")["cells"][0]

    assert {p["policy"]: p["wins"] for p in cell["policies"]} == {"heft": 3, "greedy": 0}


def test_failed_runs_are_counted_in_runs_and_not_in_n():
    records = [
        *two_policy_cell()[:2],
        failed(0, 2),
        failed(0, 3, status="cancelled"),
        failed(0, 4, status="lost"),
    ]
    cell = study_statistics(records, [{}], "makespan")["cells"][0]

    assert cell["runs"] == {"total": 5, "succeeded": 2, "failed": 1, "cancelled": 1, "lost": 1}
    assert cell["policies"][0]["metrics"]["makespan"]["n"] == 2
    assert cell["policies"][1]["versus_best"]["n"] == 2


def test_a_failed_run_contributes_no_results_even_if_it_carries_some():
    records = [*two_policy_cell(), RunRecord(0, 3, "failed", {"heft": {"makespan": 1000.0}})]
    cell = study_statistics(records, [{}], "makespan")["cells"][0]

    assert cell["policies"][0]["metrics"]["makespan"]["mean"] == pytest.approx(13.0)


def test_a_cell_without_a_succeeded_run_reports_its_runs_and_no_policy():
    records = [*two_policy_cell(cell=0), failed(1, 0), failed(1, 1)]
    cells = study_statistics(records, [{"n": 50}, {"n": 100}], "makespan")["cells"]

    assert cells[1] == {
        "cell": 1,
        "values": {"n": 100},
        "runs": {"total": 2, "succeeded": 0, "failed": 2, "cancelled": 0},
        "best": None,
        "policies": [],
    }


def test_a_cell_without_any_run_is_still_reported():
    cells = study_statistics(two_policy_cell(cell=0), [{}, {}], "makespan")["cells"]

    assert cells[1]["runs"] == {"total": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert cells[1]["best"] is None


def test_none_inf_and_non_numeric_values_are_not_samples():
    records = [
        succeeded(
            0,
            r,
            {
                "heft": {
                    "makespan": HEFT[r],
                    "slr": None if r == 1 else 2.0,
                    "rank_value": math.inf if r == 0 else 1.0,
                    "utilization": {"cpu0": 0.5},
                    "gap_to_oracle": None,
                },
            },
        )
        for r in range(3)
    ]
    metrics = study_statistics(records, [{}], "makespan")["cells"][0]["policies"][0]["metrics"]

    assert set(metrics) == {"makespan", "slr", "rank_value"}
    assert metrics["slr"]["n"] == 2
    assert metrics["rank_value"]["n"] == 2


def test_every_metric_seen_in_the_study_is_reported_for_every_policy():
    records = [
        succeeded(0, 0, {"heft": {"makespan": 1.0, "speedup": 3.0}, "greedy": {"makespan": 2.0}}),
    ]
    policies = study_statistics(records, [{}], "makespan")["cells"][0]["policies"]

    assert policies[1]["policy"] == "greedy"
    assert policies[1]["metrics"]["speedup"] == {
        "n": 0,
        "mean": None,
        "std": None,
        "ci_low": None,
        "ci_high": None,
    }


def test_a_policy_without_rank_metric_comes_last_with_no_pairs():
    records = [
        succeeded(0, r, {"aaa": {"makespan": None}, "heft": {"makespan": HEFT[r]}})
        for r in range(3)
    ]
    cell = study_statistics(records, [{}], "makespan")["cells"][0]

    assert [p["policy"] for p in cell["policies"]] == ["heft", "aaa"]
    assert cell["policies"][1]["versus_best"]["n"] == 0
    assert cell["policies"][1]["versus_best"]["mean_difference"] is None


def test_equal_means_are_ordered_by_policy_name():
    records = [succeeded(0, 0, {"zeta": {"makespan": 1.0}, "alpha": {"makespan": 1.0}})]
    cell = study_statistics(records, [{}], "makespan")["cells"][0]

    assert cell["best"] == "alpha"
    assert [p["policy"] for p in cell["policies"]] == ["alpha", "zeta"]


def test_the_result_is_strict_json():
    records = [
        *two_policy_cell(energy=(2.0, 2.0, 2.0)),  # identical energies: zero spread
        succeeded(1, 0, {"heft": {"makespan": np.float64(3.0), "speedup": math.nan}}),
        failed(2, 0),
    ]
    summary = study_statistics(records, [{"n": 1}, {"n": 2}, {"n": 3}], "makespan")

    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def test_invalid_records_are_refused():
    with pytest.raises(ValueError, match="cell 5"):
        study_statistics([failed(5, 0)], [{}], "makespan")
    with pytest.raises(ValueError, match="two runs"):
        study_statistics([failed(0, 0), failed(0, 0)], [{}], "makespan")
    with pytest.raises(ValueError, match="confidence"):
        study_statistics([], [{}], "makespan", confidence=95)


def test_rows_have_one_line_per_cell_policy_and_metric():
    summary = study_statistics(two_policy_cell(), [{"workload.num_tasks": 50}], "makespan")
    rows = statistics_rows(summary)

    assert [(r["policy"], r["metric"]) for r in rows] == [
        ("heft", "energy"),
        ("heft", "makespan"),
        ("greedy", "energy"),
        ("greedy", "makespan"),
    ]
    assert all(list(r) == ["cell", "workload.num_tasks", *ROW_COLUMNS[1:]] for r in rows)
    assert all(r["workload.num_tasks"] == 50 and r["runs_succeeded"] == 3 for r in rows)


def test_rows_carry_the_difference_only_on_the_rank_metric_of_non_best_policies():
    summary = study_statistics(two_policy_cell(), [{}], "makespan")
    rows = {(r["policy"], r["metric"]): r for r in statistics_rows(summary)}
    versus = summary["cells"][0]["policies"][1]["versus_best"]

    greedy = rows[("greedy", "makespan")]
    assert greedy["mean_difference"] == versus["mean_difference"]
    assert (greedy["diff_ci_low"], greedy["diff_ci_high"]) == (versus["ci_low"], versus["ci_high"])
    assert (greedy["p_t"], greedy["p_wilcoxon"]) == (versus["p_t"], versus["p_wilcoxon"])
    assert greedy["wins"] == 0 and greedy["n"] == 3
    assert rows[("greedy", "energy")]["p_t"] is None
    assert rows[("heft", "makespan")]["mean_difference"] is None


def test_rows_keep_a_cell_whose_runs_all_failed():
    summary = study_statistics([failed(0, 0), failed(0, 1)], [{"seed_offset": 7}], "makespan")

    [row] = statistics_rows(summary)
    assert row["seed_offset"] == 7 and row["runs_failed"] == 2 and row["n"] is None
    assert row["policy"] is None and row["metric"] is None


def test_rows_refuse_a_grid_key_named_like_a_column():
    summary = study_statistics([], [{"policy": "x"}], "makespan")

    with pytest.raises(ValueError, match="clash"):
        statistics_rows(summary)


def a_study(cells, repetitions):
    """Three policies with random makespans and energies; every fifth run failed."""
    rng = np.random.default_rng(7)
    records = []
    for cell in range(cells):
        for r in range(repetitions):
            if (cell + r) % 5 == 4:
                records.append(failed(cell, r))
                continue
            results = {
                p: {"makespan": float(rng.uniform(1, 2)), "energy": float(rng.uniform(5, 9))}
                for p in ("heft", "greedy", "oracle")
            }
            records.append(succeeded(cell, r, results))
    return records


def test_streamed_statistics_are_the_same_numbers_as_the_whole_study_at_once():
    records = a_study(cells=4, repetitions=7)
    cells = [{"n": i} for i in range(5)]  # the last cell has no runs at all
    groups = ((c, [r for r in records if r.cell == c]) for c in range(4))

    streamed = streamed_statistics(groups, cells, ["energy", "makespan"], "makespan")

    assert streamed == study_statistics(records, cells, "makespan")  # exact float equality
    assert streamed["cells"][1]["policies"][1]["versus_best"]["p_wilcoxon"] is not None


def test_streamed_statistics_let_a_cell_go_before_the_next_but_one_is_read():
    """The aggregation's memory grows with a cell, not the study: when cell k is read, no
    record of cell k-2 or earlier is alive."""
    refs: list[list[weakref.ref]] = []
    alive_before: list[int] = []

    def groups():
        for cell in range(6):
            gc.collect()
            alive_before.append(sum(ref() is not None for old in refs[:-1] for ref in old))
            records = [r for r in a_study(cells=6, repetitions=4) if r.cell == cell]
            refs.append([weakref.ref(record) for record in records])
            yield cell, records

    streamed_statistics(groups(), [{}] * 6, ["energy", "makespan"], "makespan")

    assert alive_before == [0] * 6


def test_streamed_statistics_read_a_cells_records_one_at_a_time():
    """A cell's records may come from an iterator (the database's cursor): each is let go once
    its samples are taken, so a cell of 10,000 repetitions is held as arrays, not records.
    While record k is made, no record before k-1 is alive; the numbers are those of a list."""
    records = a_study(cells=1, repetitions=40)
    refs: list[weakref.ref] = []
    alive: list[int] = []

    def one_at_a_time():
        for record in records:
            copy = RunRecord(record.cell, record.repetition, record.status, dict(record.results))
            gc.collect()
            alive.append(sum(ref() is not None for ref in refs))
            refs.append(weakref.ref(copy))
            yield copy
            del copy

    streamed = streamed_statistics(
        iter([(0, one_at_a_time())]), [{}], ["energy", "makespan"], "makespan"
    )

    assert streamed == study_statistics(records, [{}], "makespan")  # exact float equality
    assert len(alive) == 40 and max(alive) <= 1


def test_streamed_cells_out_of_order_or_twice_are_refused():
    one = [failed(0, 0)]
    with pytest.raises(ValueError, match="out of order"):
        streamed_statistics(iter([(1, one), (0, one)]), [{}, {}], [], "makespan")
    with pytest.raises(ValueError, match="two runs"):
        streamed_statistics(iter([(0, one + one)]), [{}], [], "makespan")
