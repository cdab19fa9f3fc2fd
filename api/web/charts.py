"""The dashboard's other figures, as Plotly JSON: a run's metrics per policy, a study's forest
plots and grid heatmap, and the model registry's holdout errors. They draw numbers the services
return; nothing is computed here that the API does not also report."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from api.schemas import PolicyResultOut

#: A run's metrics, in the leaderboard's order of columns, with their labels.
RUN_METRICS = {
    "makespan": "makespan (s)",
    "mean_flow_time": "mean flow time (s)",
    "p95_flow_time": "p95 flow time (s)",
    "mean_slowdown": "mean slowdown",
    "energy": "energy (J)",
    "cost": "cost",
    "mean_utilization": "mean utilization",
    "slr": "SLR",
    "speedup": "speedup",
    "lower_bound": "lower bound (s)",
    "gap_to_bound": "gap to bound",
    "gap_to_oracle": "gap to oracle",
}
SMALL: dict[str, Any] = {"height": 240, "margin": {"l": 50, "r": 10, "t": 30, "b": 60}}


def clean(value: Any) -> Any:
    """JSON a browser parses: NaN and infinities (e.g. an R² of one sample) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    return value


def metric_bars(results: Sequence[PolicyResultOut]) -> list[dict[str, Any]]:
    """One small bar chart per metric, policies in leaderboard order (metrics no result has are
    left out)."""
    figures: list[dict[str, Any]] = []
    policies = [result.policy for result in results]
    for metric, label in RUN_METRICS.items():
        values = [getattr(result, metric) for result in results]
        if all(value is None for value in values):
            continue
        figures.append(
            {
                "data": [
                    {"type": "bar", "x": policies, "y": values, "marker": {"color": "#636efa"}}
                ],
                "layout": {**SMALL, "title": {"text": label, "font": {"size": 13}}},
            }
        )
    return figures


def forest_plot(cell: Mapping[str, Any], rank_by: str) -> dict[str, Any]:
    """One cell of a study's statistics (app/studies/statistics.py): left, each policy's mean of
    `rank_by` with its 95 % interval; right, its paired difference to the cell's best with that
    difference's interval (the best itself sits at 0, without an interval)."""
    policies = cell["policies"]
    names = [p["policy"] for p in policies]
    summaries = [p["metrics"].get(rank_by, {}) for p in policies]
    means = [s.get("mean") for s in summaries]
    versus = [p["versus_best"] or {} for p in policies]
    differences = [
        0.0 if p["policy"] == cell["best"] else v.get("mean_difference")
        for p, v in zip(policies, versus, strict=True)
    ]
    return {
        "data": [
            _with_interval(names, means, summaries, "ci_low", "ci_high", "mean", "x", "#636efa"),
            _with_interval(
                names, differences, versus, "ci_low", "ci_high", "vs best", "x2", "#ef553b"
            ),
        ],
        "layout": {
            "height": 80 + 28 * len(names),
            "margin": {"l": 90, "r": 10, "t": 30, "b": 40},
            "showlegend": False,
            "xaxis": {"domain": [0, 0.47], "title": {"text": f"mean {rank_by} (95 % CI)"}},
            "xaxis2": {
                "domain": [0.53, 1],
                "title": {"text": "paired difference to the best (95 % CI)"},
                "zeroline": True,
                "zerolinecolor": "#888",
            },
            "yaxis": {"type": "category", "autorange": "reversed"},
            "yaxis2": {"anchor": "x2", "matches": "y", "showticklabels": False},
        },
    }


def _with_interval(
    names: list[str],
    centers: list[Any],
    summaries: Sequence[Mapping[str, Any]],
    low: str,
    high: str,
    label: str,
    axis: str,
    color: str,
) -> dict[str, Any]:
    plus, minus = [], []
    for center, summary in zip(centers, summaries, strict=True):
        lo, hi = summary.get(low), summary.get(high)
        known = None not in (center, lo, hi)
        plus.append(hi - center if known else None)
        minus.append(center - lo if known else None)
    return {
        "type": "scatter",
        "mode": "markers",
        "name": label,
        "x": centers,
        "y": names,
        "xaxis": axis,
        "yaxis": "y" if axis == "x" else "y2",
        "marker": {"color": color, "size": 9},
        "error_x": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
        "hovertemplate": f"%{{y}}: {label} %{{x:.4g}}<extra></extra>",
    }


def grid_heatmap(statistics: Mapping[str, Any], keys: list[str]) -> dict[str, Any] | None:
    """The best policy of every cell (as text) over the grid, coloured by how far the runner-up
    trails it (its paired mean difference, as a share of the best's mean). For grids of one or
    two keys; None for other shapes."""
    if not 1 <= len(keys) <= 2:
        return None
    rank_by = statistics["rank_by"]
    columns = _axis_values(statistics, keys[0])
    rows = _axis_values(statistics, keys[1]) if len(keys) == 2 else [""]
    z: list[list[float | None]] = [[None] * len(columns) for _ in rows]
    text = [[""] * len(columns) for _ in rows]
    for cell in statistics["cells"]:
        column = columns.index(_label(cell["values"][keys[0]]))
        row = rows.index(_label(cell["values"][keys[1]])) if len(keys) == 2 else 0
        best, gap = _best_and_gap(cell, rank_by)
        z[row][column], text[row][column] = gap, best or "none"
    return {
        "data": [
            {
                "type": "heatmap",
                "x": columns,
                "y": rows,
                "z": z,
                "text": text,
                "texttemplate": "%{text}",
                "colorscale": "YlOrRd",
                "reversescale": True,  # darker: the best wins by more
                "colorbar": {"title": {"text": "runner-up behind"}, "tickformat": ".0%"},
                "hovertemplate": "%{text} best; runner-up %{z:.1%} behind<extra></extra>",
            }
        ],
        "layout": {
            "height": 140 + 50 * len(rows),
            "margin": {"l": 90, "r": 10, "t": 10, "b": 50},
            "xaxis": {"type": "category", "title": {"text": keys[0]}},
            "yaxis": {
                "type": "category",
                "title": {"text": keys[1] if len(keys) == 2 else ""},
            },
        },
    }


def _axis_values(statistics: Mapping[str, Any], key: str) -> list[str]:
    labels: list[str] = []
    for cell in statistics["cells"]:
        label = _label(cell["values"][key])
        if label not in labels:
            labels.append(label)
    return labels


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _best_and_gap(cell: Mapping[str, Any], rank_by: str) -> tuple[str | None, float | None]:
    """The cell's best policy and the runner-up's mean difference / the best's mean."""
    best = cell["best"]
    if best is None or len(cell["policies"]) < 2:
        return best, None
    best_mean = cell["policies"][0]["metrics"].get(rank_by, {}).get("mean")
    runner_up = (cell["policies"][1]["versus_best"] or {}).get("mean_difference")
    if not best_mean or runner_up is None:
        return best, None
    return best, runner_up / best_mean


def holdout_over_time(versions: Sequence[Any]) -> dict[str, Any]:
    """Each model version's holdout MAE (ln seconds) when it was trained, promoted and rejected
    apart, and the active model's MAE on the same holdout for comparison."""
    ordered = sorted(versions, key=lambda v: v.trained_at)
    traces = []
    for status, color in (("promoted", "#00cc96"), ("rejected", "#ef553b")):
        chosen = [v for v in ordered if v.status == status]
        traces.append(
            _version_points(chosen, lambda v: v.trained_at.isoformat(), status, color, "markers")
        )
    previous = [v for v in ordered if (v.metrics.get("active_on_same_holdout") or {})]
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "the then active model, same holdout",
            "x": [v.trained_at.isoformat() for v in previous],
            "y": [v.metrics["active_on_same_holdout"]["ln_seconds"]["mae"] for v in previous],
            "marker": {"symbol": "x", "color": "#888", "size": 9},
        }
    )
    layout = {
        "height": 300,
        "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
        "yaxis": {"title": {"text": "holdout MAE, ln s"}},
        "xaxis": {"title": {"text": "trained at"}},
    }
    return {"data": traces, "layout": layout}


def learning_curve(versions: Sequence[Any]) -> dict[str, Any]:
    """Holdout MAE against the number of samples each version was trained on."""
    ordered = sorted(versions, key=lambda v: v.sample_count)
    trace = _version_points(
        ordered, lambda v: v.sample_count, "holdout MAE", "#636efa", "lines+markers"
    )
    return {
        "data": [trace],
        "layout": {
            "height": 300,
            "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
            "yaxis": {"title": {"text": "holdout MAE, ln s"}},
            "xaxis": {"title": {"text": "training samples (window)"}},
        },
    }


def _version_points(
    versions: Sequence[Any], x: Any, name: str, color: str, mode: str
) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": mode,
        "name": name,
        "x": [x(v) for v in versions],
        "y": [v.metrics["candidate"]["ln_seconds"]["mae"] for v in versions],
        "text": [f"v{v.version}" + (" (active)" if v.is_active else "") for v in versions],
        "hovertemplate": "%{text}: MAE %{y:.4f}<extra></extra>",
        "marker": {"color": color, "size": 9},
    }
