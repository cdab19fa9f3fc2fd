"""What a study's runs say, cell by cell: summaries, the best policy, paired comparisons, wins.

A study repeats each grid cell R times; repetition r of every cell runs with the same seed, and
every policy of a run sees the same workload and cluster. So within a cell, the values of two
policies at the same repetition are *paired*, and their difference is what the paired tests
(Student t and Wilcoxon signed-rank) and the difference's confidence interval are about.

Samples. A value is a sample when it is a real number (not a bool), finite, and comes from a
succeeded run; None, inf (e.g. `rank_value` when the rank metric is undefined), NaN and
non-numbers (the per-device `utilization` dict) are not, and are skipped. The metrics reported
are every key that holds a real number in some succeeded run of the study; a policy without a
sample of one gets `n = 0` and None for the rest. Failed, cancelled and other unfinished runs add
nothing to any `n`; they are counted in the cell's `runs`, so nothing disappears silently.

Lower is better for every rank metric (app/sim/ranking.py): the best policy of a cell has the
lowest mean `rank_by`, and a repetition is won by the lowest value.

Edge cases, decided here:

- std uses ddof = 1; with n < 2 there is no std and no interval (None). A std of 0 gives the
  interval [mean, mean].
- A policy's win count: every policy tied for the lowest value of a repetition gets the win, so
  the wins of a cell can add up to more than its repetitions.
- Policies are ordered by mean `rank_by`, ties and policies without a `rank_by` sample (last) by
  name. When no policy has a `rank_by` sample, `best` is None and no `versus_best` is computed.
- Paired comparisons use the repetitions where both policies have a sample. With fewer than two
  pairs there is no interval and no p-value (None). When every difference is exactly 0 both
  p-values are 1.0 (the samples are identical: no evidence of any difference; scipy would
  answer NaN for the t-test). Differences that are all equal but not 0 have no spread, so the
  t-test's p is 0.0, as scipy computes it. Any p-value scipy leaves undefined is None.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: The statuses every cell's `runs` names, even at 0; any other status seen is added.
REPORTED_STATUSES = ("succeeded", "failed", "cancelled")

#: The columns of `statistics_rows` that are not grid keys, in order.
ROW_COLUMNS = (
    "cell",
    "runs_total",
    "runs_succeeded",
    "runs_failed",
    "runs_cancelled",
    "policy",
    "metric",
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "wins",
    "mean_difference",
    "diff_ci_low",
    "diff_ci_high",
    "p_t",
    "p_wilcoxon",
)


@dataclass(frozen=True)
class RunRecord:
    """One run of a study, as the statistics need it.

    `results` maps policy -> metric -> value and is read only when `status` is "succeeded".
    """

    cell: int  # index into the study's cells
    repetition: int  # 0..R-1; the seed index, shared by every cell
    status: str  # "succeeded", "failed", "cancelled" or another terminal status
    results: Mapping[str, Mapping[str, Any]]


def study_statistics(
    records: Sequence[RunRecord],
    cells: Sequence[Mapping[str, Any]],
    rank_by: str,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Per cell: run counts, the best policy, and per policy its wins, a summary of every metric
    and its paired difference in `rank_by` to the best (module docstring for the edge cases).

    `cells[i]` are the grid values of cell i, passed through. `confidence` is the two-sided level
    of every interval. The result is plain JSON (no NaN, no inf, no numpy types), cells in index
    order, policies best first. Raises ValueError for a record of an unknown cell, two records of
    the same cell and repetition, or a confidence outside (0, 1).
    """
    by_cell: dict[int, list[RunRecord]] = defaultdict(list)
    for record in records:
        by_cell[record.cell].append(record)
    groups = sorted(by_cell.items())
    return streamed_statistics(groups, cells, _metric_names(records), rank_by, confidence)


def streamed_statistics(
    groups: Iterable[tuple[int, Iterable[RunRecord]]],
    cells: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    rank_by: str,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """`study_statistics` over runs read cell by cell: `groups` yields (cell, its records) in
    increasing cell order, each cell once (a cell without runs may be left out), and `metrics`
    are the names `study_statistics` would find (every key holding a real number in some
    succeeded run). A cell's records may come lazily (an iterator): each is read once, its
    samples kept as arrays (`CellSamples`, 16 bytes a sample) and the record let go. So a
    caller that streams them holds one cell's samples at a time, not the study: memory grows
    with the largest cell (its repetitions x policies x metrics samples, which the paired tests
    need whole), not with the runs. Same numbers as `study_statistics`: the same functions on
    the same samples. Raises ValueError as `study_statistics` does, and for cells out of
    order."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), not {confidence}")
    summaries = [
        _cell_statistics(index, cells[index], records, metrics, rank_by, confidence)
        for index, records in _every_cell(groups, len(cells))
    ]
    return {"rank_by": rank_by, "confidence": confidence, "cells": summaries}


def summarize_metric(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> dict[str, Any]:
    """n, mean, std (ddof = 1) and the Student t interval of the mean of `values`; None where
    undefined (no mean for n = 0, no std or interval for n < 2)."""
    n = len(values)
    summary: dict[str, Any] = {"n": n, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    if n == 0:
        return summary
    sample = np.asarray(values, dtype=float)
    mean = float(sample.mean())
    summary["mean"] = mean
    if n < 2:
        return summary
    std = float(sample.std(ddof=1))
    half_width = _t_quantile(confidence, n - 1) * std / math.sqrt(n)
    summary.update(std=std, ci_low=mean - half_width, ci_high=mean + half_width)
    return summary


def compare_paired(
    values: Mapping[int, float], reference: Mapping[int, float], confidence: float = 0.95
) -> dict[str, Any]:
    """The difference `values - reference` over the repetitions both have: the number of pairs,
    the mean difference with its paired t interval, and the two-sided p-values of the paired t
    test and the Wilcoxon signed-rank test (module docstring for the degenerate cases)."""
    return _compare(PolicySamples.of(values), PolicySamples.of(reference), confidence)


def _compare(values: PolicySamples, reference: PolicySamples, confidence: float) -> dict[str, Any]:
    """compare_paired on samples ordered by repetition."""
    _, mine, theirs = np.intersect1d(
        values.repetitions, reference.repetitions, assume_unique=True, return_indices=True
    )
    x, y = values.values[mine], reference.values[theirs]
    difference = summarize_metric(x - y, confidence)
    p_t, p_wilcoxon = _paired_p_values(x, y)
    return {
        "n": difference["n"],
        "mean_difference": difference["mean"],
        "ci_low": difference["ci_low"],
        "ci_high": difference["ci_high"],
        "p_t": p_t,
        "p_wilcoxon": p_wilcoxon,
    }


def count_wins(values: Mapping[str, Mapping[int, float]]) -> dict[str, int]:
    """For each policy (`values`: policy -> repetition -> value), the repetitions where its value
    is the lowest among the policies with a value there; every tied policy wins."""
    return _wins({policy: PolicySamples.of(samples) for policy, samples in values.items()})


def _wins(ranks: Mapping[str, PolicySamples]) -> dict[str, int]:
    """count_wins on samples ordered by repetition (each value finite: a missing one is +inf)."""
    if not ranks:
        return {}
    repetitions = np.unique(np.concatenate([samples.repetitions for samples in ranks.values()]))
    table = np.full((len(ranks), repetitions.size), np.inf)
    for row, samples in zip(table, ranks.values(), strict=True):
        row[np.searchsorted(repetitions, samples.repetitions)] = samples.values
    lowest = table.min(axis=0)
    return {
        policy: int(np.count_nonzero(row == lowest))
        for policy, row in zip(ranks, table, strict=True)
    }


def statistics_rows(statistics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`study_statistics`' result flattened for a CSV: one row per cell x policy x metric.

    Columns: `cell`; the cell's grid keys (its `values`, after `cell`); the run counts
    `runs_total`, `runs_succeeded`, `runs_failed`, `runs_cancelled` (other statuses only in the
    total); `policy`, `metric`, and the metric's `n`, `mean`, `std`, `ci_low`, `ci_high`; the
    policy's `wins` (repeated on each of its rows); and, only on the row of the rank metric of a
    policy other than the best, its paired difference to the best: `mean_difference`,
    `diff_ci_low`, `diff_ci_high`, `p_t`, `p_wilcoxon` (None elsewhere). A cell without a
    succeeded run still gets one row, with policy and metric None, so its failures show.
    Raises ValueError when a grid key has the name of one of the other columns.
    """
    rows: list[dict[str, Any]] = []
    for cell in statistics["cells"]:
        head = _cell_head(cell)
        if not cell["policies"]:
            rows.append(_row(head, None, None, {}, None, None))
        for policy in cell["policies"]:
            for metric, summary in policy["metrics"].items():
                versus = policy["versus_best"] if metric == statistics["rank_by"] else None
                rows.append(_row(head, policy["policy"], metric, summary, policy["wins"], versus))
    return rows


def _every_cell(
    groups: Iterable[tuple[int, Iterable[RunRecord]]], num_cells: int
) -> Iterator[tuple[int, Iterable[RunRecord]]]:
    """Every cell 0..num_cells-1 with its records (none for a cell `groups` leaves out),
    checking that cells come in order (CellSamples checks that no repetition has two runs)."""
    expected = 0
    for cell, records in groups:
        if not 0 <= cell < num_cells:
            raise ValueError(f"a run of cell {cell}, but the study has {num_cells} cells")
        if cell < expected:
            raise ValueError(f"the runs of cell {cell} come twice or out of order")
        yield from ((empty, ()) for empty in range(expected, cell))
        yield cell, records
        expected = cell + 1
    yield from ((empty, ()) for empty in range(expected, num_cells))


def _is_sample(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _metric_names(records: Sequence[RunRecord]) -> list[str]:
    """Every key holding a real number in some succeeded run, sorted."""
    names = {
        metric
        for record in records
        if record.status == "succeeded"
        for metrics in record.results.values()
        for metric, value in metrics.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    }
    return sorted(names)


@dataclass(frozen=True)
class PolicySamples:
    """One policy's samples of one metric in a cell: `repetitions` (increasing) and their
    `values`, as arrays."""

    repetitions: np.ndarray
    values: np.ndarray

    @classmethod
    def ordered(cls, repetitions: np.ndarray, values: np.ndarray) -> PolicySamples:
        """The samples ordered by repetition (records may come in any order)."""
        order = np.argsort(repetitions, kind="stable")
        return cls(repetitions[order], values[order])

    @classmethod
    def of(cls, values: Mapping[int, float]) -> PolicySamples:
        """From repetition -> value."""
        return cls.ordered(
            np.fromiter(values.keys(), dtype=np.int64, count=len(values)),
            np.fromiter(values.values(), dtype=float, count=len(values)),
        )


NO_SAMPLES = PolicySamples(np.zeros(0, dtype=np.int64), np.zeros(0))


class CellSamples:
    """One cell read record by record: its run counts by status and, per policy and metric,
    the samples of its succeeded runs in compact arrays (`array`: 8 bytes a repetition and 8 a
    value) rather than the records' dictionaries (~4 kB a run): what the aggregation of a cell
    of 10,000 repetitions holds. Raises ValueError for a second run of a repetition."""

    def __init__(self, cell: int, records: Iterable[RunRecord]) -> None:
        self.statuses: Counter[str] = Counter()
        every = array("q")  # every run's repetition, to find one twice
        found: dict[str, dict[str, tuple[array[int], array[float]]]] = {}
        for record in records:
            self.statuses[record.status] += 1
            every.append(record.repetition)
            if record.status != "succeeded":
                continue
            for policy, metrics in record.results.items():
                per_metric = found.setdefault(policy, {})
                for metric, value in metrics.items():
                    if _is_sample(value):
                        repetitions, values = per_metric.setdefault(
                            metric, (array("q"), array("d"))
                        )
                        repetitions.append(record.repetition)
                        values.append(float(value))
        _check_repetitions(cell, np.frombuffer(every, dtype=np.int64))
        self.samples = {
            policy: {
                metric: PolicySamples.ordered(
                    np.frombuffer(repetitions, dtype=np.int64), np.frombuffer(values, dtype=float)
                )
                for metric, (repetitions, values) in per_metric.items()
            }
            for policy, per_metric in found.items()
        }

    def of(self, policy: str, metric: str) -> PolicySamples:
        return self.samples[policy].get(metric, NO_SAMPLES)

    def run_counts(self) -> dict[str, int]:
        runs = {"total": sum(self.statuses.values())}
        runs |= {status: self.statuses[status] for status in REPORTED_STATUSES}
        return runs | {
            status: self.statuses[status] for status in sorted(self.statuses) if status not in runs
        }


def _check_repetitions(cell: int, repetitions: np.ndarray) -> None:
    ordered = np.sort(repetitions, kind="stable")
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    if twice.size:
        raise ValueError(f"two runs of cell {cell}, repetition {int(twice[0])}")


def _cell_statistics(
    index: int,
    values: Mapping[str, Any],
    records: Iterable[RunRecord],
    metrics: Sequence[str],
    rank_by: str,
    confidence: float,
) -> dict[str, Any]:
    cell = CellSamples(index, records)
    ranks = {policy: cell.of(policy, rank_by) for policy in cell.samples}
    order, best = _best_first(ranks)
    wins = _wins(ranks)
    policies = []
    for policy in order:
        versus = None
        if best is not None and policy != best:
            paired = _compare(ranks[policy], ranks[best], confidence)
            versus = {"metric": rank_by} | paired
        summaries = {
            metric: summarize_metric(cell.of(policy, metric).values, confidence)
            for metric in metrics
        }
        policies.append(
            {"policy": policy, "wins": wins[policy], "metrics": summaries, "versus_best": versus}
        )
    return {
        "cell": index,
        "values": dict(values),
        "runs": cell.run_counts(),
        "best": best,
        "policies": policies,
    }


def _best_first(ranks: Mapping[str, PolicySamples]) -> tuple[list[str], str | None]:
    """Policies by mean rank value, ties by name, those without a value last; and the best
    policy, None when no policy has a value."""
    means = {p: float(np.mean(v.values)) if v.values.size else None for p, v in ranks.items()}
    order = sorted(ranks, key=lambda p: (means[p] is None, means[p] or 0.0, p))
    best = order[0] if order and means[order[0]] is not None else None
    return order, best


@functools.lru_cache(maxsize=1024)
def _t_quantile(confidence: float, dof: int) -> float:
    """The two-sided Student t critical value: P(|T| <= q) = confidence. Cached: a study asks
    for the same few (every metric of every policy of a cell has the cell's repetitions), and
    scipy takes ~0.1 ms a call (a 48-run study's checks and aggregation: 52 ms, 44 cached)."""
    return float(stats.t.ppf((1.0 + confidence) / 2.0, dof))


def _paired_p_values(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Two-sided p of the paired t test and of the Wilcoxon signed-rank test of x against y."""
    if len(x) < 2:
        return None, None
    if np.all(x == y):
        return 1.0, 1.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Zero spread or few non-zero differences make scipy warn; the value is judged below.
        warnings.simplefilter("ignore", RuntimeWarning)
        p_t = float(stats.ttest_rel(x, y).pvalue)
        try:
            p_wilcoxon = float(stats.wilcoxon(x, y).pvalue)
        except ValueError:
            p_wilcoxon = math.nan
    return _finite_or_none(p_t), _finite_or_none(p_wilcoxon)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _cell_head(cell: Mapping[str, Any]) -> dict[str, Any]:
    clashes = sorted(set(cell["values"]) & set(ROW_COLUMNS))
    if clashes:
        raise ValueError(f"grid keys {clashes} clash with the columns of the statistics rows")
    runs = cell["runs"]
    return (
        {"cell": cell["cell"]}
        | dict(cell["values"])
        | {"runs_total": runs["total"]}
        | {f"runs_{status}": runs.get(status, 0) for status in REPORTED_STATUSES}
    )


def _row(
    head: Mapping[str, Any],
    policy: str | None,
    metric: str | None,
    summary: Mapping[str, Any],
    wins: int | None,
    versus: Mapping[str, Any] | None,
) -> dict[str, Any]:
    versus = versus or {}
    return dict(head) | {
        "policy": policy,
        "metric": metric,
        "n": summary.get("n"),
        "mean": summary.get("mean"),
        "std": summary.get("std"),
        "ci_low": summary.get("ci_low"),
        "ci_high": summary.get("ci_high"),
        "wins": wins,
        "mean_difference": versus.get("mean_difference"),
        "diff_ci_low": versus.get("ci_low"),
        "diff_ci_high": versus.get("ci_high"),
        "p_t": versus.get("p_t"),
        "p_wilcoxon": versus.get("p_wilcoxon"),
    }
