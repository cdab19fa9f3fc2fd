"""How a study reads on a terminal: its progress while it runs, its statistics as tables.

The `hms study` commands (app/cli.py) fetch the documents from the API; this module turns them
into text. The statistics document is the one
`app.studies.statistics.study_statistics` builds (its docstring for the fields).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from app.cli_tables import text_table

#: The study statuses after which nothing changes.
STUDY_ENDED = frozenset({"succeeded", "cancelled"})

#: Run statuses shown first in a study's progress, in this order; others follow by name.
_STATUS_ORDER = ("succeeded", "failed", "cancelled", "running", "queued")


def progress_text(study: Mapping[str, Any]) -> str:
    """'3/12 runs: succeeded 2, failed 1, queued 9' for a StudyOut document or a study's event."""
    counts: Mapping[str, int] = study["counts"]
    statuses = sorted(
        counts, key=lambda s: (_STATUS_ORDER.index(s) if s in _STATUS_ORDER else 99, s)
    )
    by_status = ", ".join(f"{status} {counts[status]}" for status in statuses)
    return f"{study['finished_runs']}/{study['total_runs']} runs: {by_status}"


def results_table(statistics: Mapping[str, Any]) -> str:
    """One table per cell, policies best first: wins, mean rank metric ± CI half-width, and the
    paired difference to the best with its CI and p-values."""
    rank_by, level = statistics["rank_by"], f"{statistics['confidence']:.0%}"
    metric, versus = f"{rank_by} ± {level} CI", f"vs best [{level} CI]"
    header = ("policy", "wins", metric, versus, "p_t", "p_wilcoxon")
    parts = []
    for cell in statistics["cells"]:
        rows = [_policy_row(policy, rank_by) for policy in cell["policies"]]
        table = text_table(header, rows) if rows else "no succeeded run: no statistics"
        parts.append(f"{_cell_title(cell)}\n{table}")
    footer = f"ranked by {rank_by}, lower is better; vs best: paired difference to the cell's best"
    return "\n\n".join([*parts, footer])


def _cell_title(cell: Mapping[str, Any]) -> str:
    values = "  ".join(f"{key}={_value(value)}" for key, value in cell["values"].items())
    runs = cell["runs"]
    counts = ", ".join(
        f"{runs.get(status, 0)} {status}" for status in ("succeeded", "failed", "cancelled")
    )
    title = f"cell {cell['cell']}" + (f"  {values}" if values else "")
    return f"{title}\nruns: {counts} (of {runs['total']})"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _policy_row(policy: Mapping[str, Any], rank_by: str) -> tuple[str, ...]:
    summary = policy["metrics"].get(rank_by, {})
    versus = policy["versus_best"] or {}
    return (
        policy["policy"],
        str(policy["wins"]),
        _mean_and_half_width(summary),
        _difference(versus),
        _p_value(versus.get("p_t")),
        _p_value(versus.get("p_wilcoxon")),
    )


def _mean_and_half_width(summary: Mapping[str, Any]) -> str:
    """'12.35 ± 0.42'; the mean alone with fewer than two samples; '' without any."""
    mean = summary.get("mean")
    if mean is None:
        return ""
    decimals = _decimals(mean)
    if summary.get("ci_high") is None:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {summary['ci_high'] - mean:.{decimals}f}"


def _difference(versus: Mapping[str, Any]) -> str:
    """'+2.66 [+1.20, +4.11]'; the difference alone without an interval; '' for the best."""
    difference = versus.get("mean_difference")
    if difference is None:
        return ""
    decimals = _decimals(difference)
    if versus.get("ci_low") is None:
        return f"{difference:+.{decimals}f}"
    low, high = versus["ci_low"], versus["ci_high"]
    return f"{difference:+.{decimals}f} [{low:+.{decimals}f}, {high:+.{decimals}f}]"


def _p_value(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _decimals(value: float) -> int:
    """Decimals that show `value` with 4 significant digits (at most 6, no exponent)."""
    if value == 0:
        return 3
    return min(6, max(0, 3 - math.floor(math.log10(abs(value)))))
