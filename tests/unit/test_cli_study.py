"""`hms study`'s text: the results tables from a real statistics document and the progress
text (no servers; the commands against the API: tests/integration/test_cli_study.py)."""

import re

import pytest

from app.cli.tables import progress_text, results_table, text_table
from app.studies.statistics import RunRecord, study_statistics

FLOWS = {"oracle": [10.0, 11.0, 12.5], "heft": [12.0, 12.5, 15.0], "greedy": [20.0, 18.0, 26.0]}
CELLS = [
    {"workload.load": 0.5, "knowledge": "clairvoyant"},
    {"workload.load": 0.9, "knowledge": "clairvoyant"},
    {"workload.load": 0.9, "knowledge": "estimated"},
]


@pytest.fixture
def statistics():
    """Cell 0: three succeeded runs; cell 1: two succeeded, one failed; cell 2: one cancelled."""
    records = [
        RunRecord(
            cell,
            repetition,
            "failed" if (cell, repetition) == (1, 2) else "succeeded",
            {
                p: {"mean_flow_time": v[repetition] * (1 + cell), "makespan": 99.0}
                for p, v in FLOWS.items()
            },
        )
        for cell in (0, 1)
        for repetition in range(3)
    ]
    records.append(RunRecord(2, 0, "cancelled", {}))
    return study_statistics(records, CELLS, "mean_flow_time")


def tables(text: str) -> list[list[list[str]]]:
    """Each cell's table as rows of cells (split on runs of 2+ spaces), header first."""
    blocks = text.split("\n\n")[:-1]  # the last block is the footer
    return [
        [re.split(r" {2,}", line.strip()) for line in block.splitlines()[2:] if "---" not in line]
        for block in blocks
    ]


def test_each_cell_is_titled_by_its_grid_values_and_run_counts(statistics):
    blocks = results_table(statistics).split("\n\n")
    assert blocks[0].splitlines()[:2] == [
        "cell 0  workload.load=0.5  knowledge=clairvoyant",
        "runs: 3 succeeded, 0 failed, 0 cancelled (of 3)",
    ]
    assert blocks[1].splitlines()[1] == "runs: 2 succeeded, 1 failed, 0 cancelled (of 3)"
    assert blocks[2].splitlines() == [
        "cell 2  workload.load=0.9  knowledge=estimated",
        "runs: 0 succeeded, 0 failed, 1 cancelled (of 1)",
        "no succeeded run: no statistics",
    ]
    assert blocks[-1].startswith("ranked by mean_flow_time, lower is better")


def test_policies_are_best_first_with_wins_mean_and_half_width(statistics):
    header, *rows = tables(results_table(statistics))[0]
    assert header == [
        "policy", "wins", "mean_flow_time ± 95% CI", "vs best [95% CI]", "p_t", "p_wilcoxon"
    ]  # fmt: skip
    assert [row[0] for row in rows] == ["oracle", "heft", "greedy"]
    assert [row[1] for row in rows] == ["3", "0", "0"]
    oracle = statistics["cells"][0]["policies"][0]["metrics"]["mean_flow_time"]
    half_width = oracle["ci_high"] - oracle["mean"]
    assert rows[0][2] == f"{oracle['mean']:.2f} ± {half_width:.2f}"
    assert len(rows[0]) == 3  # the best has no comparison with itself


def test_the_others_show_the_paired_difference_its_interval_and_p_values(statistics):
    rows = tables(results_table(statistics))[0][1:]
    heft = statistics["cells"][0]["policies"][1]["versus_best"]
    assert heft["mean_difference"] == pytest.approx(2.0)
    assert rows[1][3] == f"+2.000 [{heft['ci_low']:+.3f}, {heft['ci_high']:+.3f}]"
    assert rows[1][4:] == [f"{heft['p_t']:.3f}", f"{heft['p_wilcoxon']:.3f}"]
    assert float(rows[2][4]) < 0.05  # greedy is worse by ~10 in every repetition


def test_tiny_p_values_small_numbers_and_undefined_statistics_read_plainly():
    """b is worse by ~1 in each of 10 repetitions of cell 0; cell 1 has one run, b worse by
    0.00075."""
    records = [
        RunRecord(0, r, "succeeded", {"a": {"cost": r}, "b": {"cost": r + 1 + 0.01 * (r % 3)}})
        for r in range(10)
    ] + [RunRecord(1, 0, "succeeded", {"a": {"cost": 0.002}, "b": {"cost": 0.00275}})]
    text = results_table(study_statistics(records, [{}, {}], "cost"))
    first, second = tables(text)
    assert first[2][4:] == ["<0.001", "0.002"]  # Wilcoxon, all 10 signs alike: 2 / 2**10
    assert second[1:] == [["a", "1", "0.002000"], ["b", "0", "0.002750", "+0.000750"]]
    assert "e-" not in text  # no exponents
    assert text.splitlines()[0] == "cell 0"  # no grid: no values


def test_a_text_table_aligns_the_first_column_left_and_the_others_right():
    assert text_table(("name", "n"), [("a", "10"), ("longer", "2")]).splitlines() == [
        "name     n",
        "------  --",
        "a       10",
        "longer   2",
    ]


STUDY = {"progress": 0.25, "finished_runs": 3, "total_runs": 12}


def test_progress_names_finished_of_total_runs_and_the_counts_by_status():
    counts = {"queued": 8, "running": 1, "failed": 1, "succeeded": 2}
    assert progress_text({**STUDY, "counts": counts}) == (
        "3/12 runs: succeeded 2, failed 1, running 1, queued 8"
    )
