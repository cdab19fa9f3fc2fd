"""The dashboard's other figures, as Plotly JSON: a run's metrics per policy, a study's forest
plots and grid heatmap, the model registry's holdout errors, and a kernel profile's timings and
accelerations. They draw numbers the services return; nothing is computed here that the API does
not also report, except an acceleration (the ratio of two mean times the API reports) and a
change of unit (energy in kJ, as the CLI shows it)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.schemas import PolicyResultOut
from api.web.gantt import BUSY_COLORSCALE
from app.profilespec import TimingSpec


@dataclass(frozen=True)
class Metric:
    """How the dashboard shows one of a run's metrics: its name, its unit, and the factor from
    the API's unit to that one (energy: J to kJ, as the CLI's tables, app/cli/tables.py)."""

    name: str
    unit: str = ""
    scale: float = 1.0
    percent: bool = False  # a share, shown as a percentage

    @property
    def label(self) -> str:
        """The name with its unit: "mean flow time (s)"."""
        return f"{self.name}{self.in_unit}"

    @property
    def in_unit(self) -> str:
        return f" ({self.unit})" if self.unit else ""

    def shown(self, value: float | None) -> float | None:
        """`value` (the API's unit) in this unit."""
        return None if value is None else value * self.scale


#: A run's metrics, in the leaderboard's order of columns.
RUN_METRICS = {
    "makespan": Metric("makespan", "s"),
    "mean_flow_time": Metric("mean flow time", "s"),
    "p95_flow_time": Metric("p95 flow time", "s"),
    "mean_slowdown": Metric("mean slowdown"),
    "energy": Metric("energy", "kJ", scale=1e-3),
    "cost": Metric("cost"),
    "mean_utilization": Metric("mean utilization", percent=True),
    "slr": Metric("SLR"),
    "speedup": Metric("speedup"),
    "lower_bound": Metric("lower bound", "s"),
    "gap_to_bound": Metric("gap to bound", percent=True),
    "gap_to_oracle": Metric("gap to oracle", percent=True),
}
#: A forest plot's panel is drawn on a log axis when its values span more than this ratio: on a
#: linear one, a policy 10x worse than the others squeezes their intervals into dots at 0.
LOG_SPAN = 10.0
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
    """One small bar chart per metric, in its label's unit, policies in leaderboard order
    (metrics no result has are left out)."""
    figures: list[dict[str, Any]] = []
    policies = [result.policy for result in results]
    for name, metric in RUN_METRICS.items():
        values = [metric.shown(getattr(result, name)) for result in results]
        if all(value is None for value in values):
            continue
        bars = {"type": "bar", "x": policies, "y": values, "marker": {"color": "#636efa"}}
        layout = {**SMALL, "title": {"text": metric.label, "font": {"size": 13}}}
        if metric.percent:
            layout["yaxis"] = {"tickformat": ".0%"}
        figures.append({"data": [bars], "layout": layout})
    return figures


def device_utilization(results: Sequence[PolicyResultOut]) -> dict[str, Any]:
    """Each policy's busy share of each device over its whole schedule (the results' own
    `utilization`, which every run keeps, schedules or not), as a heatmap: policies down in
    leaderboard order, devices across."""
    devices = list(dict.fromkeys(d for result in results for d in result.utilization))
    shares = [[result.utilization.get(d) for d in devices] for result in results]
    heatmap = {
        "type": "heatmap",
        "x": devices,
        "y": [result.policy for result in results],
        "z": shares,
        "zmin": 0,
        "zmax": 1,
        "colorscale": BUSY_COLORSCALE,
        "colorbar": {"title": {"text": "busy"}, "tickformat": ".0%"},
        "hovertemplate": "%{y} on %{x}: %{z:.0%} busy<extra></extra>",
    }
    layout = {
        "height": 90 + 26 * len(results),
        "margin": {"l": 90, "r": 20, "t": 10, "b": 60},
        "yaxis": {"type": "category", "autorange": "reversed"},
        "xaxis": {"type": "category"},
    }
    return {"data": [heatmap], "layout": layout}


def forest_plot(cell: Mapping[str, Any], rank_by: str) -> dict[str, Any]:
    """One cell of a study's statistics (app/studies/statistics.py): left, each policy's mean of
    `rank_by` with its 95 % interval; right, its paired difference to the cell's best with that
    difference's interval (the best itself sits at 0, without an interval). Both in the metric's
    unit (RUN_METRICS), each panel on a log axis where its values span more than LOG_SPAN."""
    metric = RUN_METRICS[rank_by]
    policies = cell["policies"]
    names = [p["policy"] for p in policies]
    summaries = [p["metrics"].get(rank_by, {}) for p in policies]
    versus = [p["versus_best"] or {} for p in policies]
    is_best = [p["policy"] == cell["best"] for p in policies]
    means = _Interval.of(metric, summaries, "mean")
    differences = _Interval.of(metric, versus, "mean_difference", at_zero=is_best)
    left, right = _axis_type(means.centers), _axis_type(differences.centers, is_best)
    return {
        "data": [
            _with_interval(names, means, "mean", "x", "#636efa"),
            _with_interval(names, differences, "vs best", "x2", "#ef553b"),
        ],
        "layout": {
            "height": 80 + 28 * len(names),
            "margin": {"l": 90, "r": 10, "t": 30, "b": 40},
            "showlegend": False,
            "xaxis": {
                "domain": [0, 0.47],
                "type": left,
                "title": {"text": _scale_note(f"{metric.label}: mean, 95 % CI", left)},
            },
            "xaxis2": {
                "domain": [0.53, 1],
                "type": right,
                "title": {
                    "text": _scale_note(
                        f"paired difference to the best{metric.in_unit}, 95 % CI", right
                    )
                },
                "zeroline": True,
                "zerolinecolor": "#888",
            },
            "yaxis": {"type": "category", "autorange": "reversed"},
            "yaxis2": {"anchor": "x2", "matches": "y", "showticklabels": False},
        },
    }


@dataclass(frozen=True)
class _Interval:
    """A forest plot panel's points, in the metric's unit: centres and each interval's ends
    (None where unknown)."""

    centers: list[float | None]
    lows: list[float | None]
    highs: list[float | None]

    @classmethod
    def of(
        cls,
        metric: Metric,
        summaries: Sequence[Mapping[str, Any]],
        center: str,
        at_zero: Sequence[bool] = (),
    ) -> _Interval:
        """From the statistics' documents: `center` and ci_low/ci_high of each; a point of
        `at_zero` sits at 0 without an interval (the best, compared with itself)."""
        zero = list(at_zero) or [False] * len(summaries)
        centers, lows, highs = [], [], []
        for summary, is_zero in zip(summaries, zero, strict=True):
            centers.append(0.0 if is_zero else metric.shown(summary.get(center)))
            lows.append(None if is_zero else metric.shown(summary.get("ci_low")))
            highs.append(None if is_zero else metric.shown(summary.get("ci_high")))
        return cls(centers, lows, highs)


def _axis_type(centers: Sequence[float | None], left_out: Sequence[bool] = ()) -> str:
    """The type of a panel's axis: "log" when its known centres (but those `left_out`) are all
    positive and span more than LOG_SPAN, else "linear"."""
    out = list(left_out) or [False] * len(centers)
    known = [c for c, skip in zip(centers, out, strict=True) if not skip and c is not None]
    if len(known) < 2 or min(known) <= 0 or max(known) / min(known) <= LOG_SPAN:
        return "linear"
    return "log"


def _scale_note(title: str, axis_type: str) -> str:
    """An axis title that says when the axis is logarithmic (where 0, the best's difference to
    itself, is not drawn)."""
    return f"{title} · log scale" if axis_type == "log" else title


def _with_interval(
    names: list[str], points: _Interval, label: str, axis: str, color: str
) -> dict[str, Any]:
    plus: list[float | None] = []
    minus: list[float | None] = []
    for center, lo, hi in zip(points.centers, points.lows, points.highs, strict=True):
        if center is None or lo is None or hi is None:
            plus.append(None)
            minus.append(None)
        else:
            plus.append(hi - center)
            minus.append(center - lo)
    return {
        "type": "scatter",
        "mode": "markers",
        "name": label,
        "x": points.centers,
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


#: The holdout-MAE axis of the Models charts: an error is never negative, so it starts at 0.
MAE_AXIS: dict[str, Any] = {"title": {"text": "holdout MAE, ln s"}, "rangemode": "tozero"}
#: The narrowest time axis of the holdout error over time: a day.
MIN_DATES_SPAN = timedelta(days=1)


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
    xaxis: dict[str, Any] = {"title": {"text": "trained at"}}
    xaxis.update(_dates_range([v.trained_at for v in ordered]))
    layout = {
        "height": 300,
        "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
        "yaxis": MAE_AXIS,
        "xaxis": xaxis,
    }
    return {"data": traces, "layout": layout}


def _dates_range(moments: Sequence[datetime]) -> dict[str, Any]:
    """An explicit range MIN_DATES_SPAN wide around moments closer together than that (one
    version alone would get an axis of nanoseconds); none (Plotly's autorange) otherwise."""
    if not moments or max(moments) - min(moments) >= MIN_DATES_SPAN:
        return {}
    middle = min(moments) + (max(moments) - min(moments)) / 2
    half = MIN_DATES_SPAN / 2
    return {"range": [(middle - half).isoformat(), (middle + half).isoformat()]}


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
            "yaxis": MAE_AXIS,
            # From 0 samples: one version (or a window every version filled) is one point, which
            # Plotly would centre in a range a few samples wide.
            "xaxis": {"title": {"text": "training samples (window)"}, "rangemode": "tozero"},
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


#: How a profile's timing point is drawn, by the spread it has (docs/profiles.md): the median
#: with its 5th-95th percentiles where it has quantiles (asymmetric, as timings are), else the
#: mean with one standard deviation either side, else the mean alone.
SPREADS = {
    "quantiles": "median, bars 5th to 95th percentile",
    "std": "mean, bars ± 1 standard deviation",
    "none": "mean only (no spread given)",
    "mixed": "median and 5th to 95th percentile where given, else mean ± 1 standard deviation",
}
DEVICE_COLORS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3")
#: The device kind accelerations are relative to: acceleration = its time / another kind's.
REFERENCE_KIND = "cpu"


def _point(timing: TimingSpec) -> tuple[str, float, float | None, float | None]:
    """(spread, center, plus, minus) of one timing, seconds."""
    if timing.quantiles_s is not None:
        q = timing.quantiles_s
        return "quantiles", q.p50, q.p95 - q.p50, q.p50 - q.p05
    if timing.std_s is not None:
        return "std", timing.mean_s, timing.std_s, timing.std_s
    return "none", timing.mean_s, None, None


def timing_series(
    timings: Sequence[TimingSpec],
) -> list[tuple[str, str, str, list[TimingSpec]]]:
    """The timings grouped by (device kind, contention), in the order they first appear, each
    as (device, contention, spread, points by size); spread is a key of SPREADS ("mixed" when
    the points of one series differ)."""
    groups: dict[tuple[str, str], list[TimingSpec]] = {}
    for timing in timings:
        groups.setdefault((timing.device, timing.contention), []).append(timing)
    series = []
    for (device, contention), points in groups.items():
        ordered = sorted(points, key=lambda t: t.size)
        kinds = {_point(t)[0] for t in ordered}
        series.append((device, contention, kinds.pop() if len(kinds) == 1 else "mixed", ordered))
    return series


def spread_caption(timings: Sequence[TimingSpec]) -> str:
    """What the points and bars of `kernel_timings` are, per series: its figure's caption."""
    parts = []
    for device, contention, spread, _ in timing_series(timings):
        parts.append(f"{_series_name(device, contention)}: {SPREADS[spread]}")
    return "; ".join(parts)


def _series_name(device: str, contention: str) -> str:
    return device if contention == "alone" else f"{device}, {contention.replace('_', ' ')}"


def kernel_timings(kernel: str, timings: Sequence[TimingSpec]) -> dict[str, Any]:
    """One kernel's time (seconds) against tile size b, both on log axes (kernel times are power
    laws of b), one series per device kind and contention, with error bars (SPREADS)."""
    traces = []
    kinds = list(dict.fromkeys(t.device for t in timings))
    for device, contention, _, points in timing_series(timings):
        centers, plus, minus = [], [], []
        for timing in points:
            _, center, up, down = _point(timing)
            centers.append(center)
            plus.append(up)
            minus.append(down)
        color = DEVICE_COLORS[kinds.index(device) % len(DEVICE_COLORS)]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _series_name(device, contention),
                "x": [t.size for t in points],
                "y": centers,
                "line": {"color": color, "dash": "solid" if contention == "alone" else "dot"},
                "marker": {"color": color, "size": 7},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": plus,
                    "arrayminus": minus,
                    "visible": any(value is not None for value in plus),
                },
                "hovertemplate": f"{_series_name(device, contention)}, b=%{{x}}: "
                "%{y:.3s}s<extra></extra>",
            }
        )
    return {"data": traces, "layout": _log_layout(f"{kernel}: time per call", "time (s)")}


def accelerations(
    timings: Sequence[TimingSpec], reference: str = REFERENCE_KIND
) -> dict[str, list[tuple[int, float]]]:
    """Each other device kind's acceleration over `reference`: reference mean time / its mean
    time, at the sizes both timed alone, ascending. Empty without the reference kind or another."""
    alone = {(t.device, t.size): t.mean_s for t in timings if t.contention == "alone"}
    kinds = list(dict.fromkeys(device for device, _ in alone))
    curves: dict[str, list[tuple[int, float]]] = {}
    if reference not in kinds:
        return curves
    for kind in kinds:
        if kind == reference:
            continue
        sizes = sorted(s for d, s in alone if d == kind and (reference, s) in alone)
        if sizes:
            curves[kind] = [(s, alone[reference, s] / alone[kind, s]) for s in sizes]
    return curves


def acceleration_curve(kernel: str, timings: Sequence[TimingSpec]) -> dict[str, Any] | None:
    """One kernel's acceleration (CPU time / other device's time, from the mean times alone)
    against tile size b, both on log axes, with the break-even line at 1; None when the profile does
    not time the kernel on the CPU and on another kind of device."""
    curves = accelerations(timings)
    if not curves:
        return None
    kinds = list(dict.fromkeys(t.device for t in timings))
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": f"{REFERENCE_KIND} / {kind}",
            "x": [size for size, _ in points],
            "y": [ratio for _, ratio in points],
            "line": {"color": DEVICE_COLORS[kinds.index(kind) % len(DEVICE_COLORS)]},
            "hovertemplate": f"b=%{{x}}: {kind} %{{y:.3g}}x faster<extra></extra>",
        }
        for kind, points in curves.items()
    ]
    over = next(iter(curves)) if len(curves) == 1 else "device"
    layout = _log_layout(
        f"{kernel}: acceleration over {REFERENCE_KIND}", f"{REFERENCE_KIND} time / {over} time"
    )
    layout["shapes"] = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "yref": "y",
            "y0": 1,
            "y1": 1,
            "line": {"color": "#888", "dash": "dash", "width": 1},
        }
    ]
    return {"data": traces, "layout": layout}


def _log_layout(title: str, y_title: str) -> dict[str, Any]:
    """A log-log layout: tile size b on x (a tick at each power of two), y in decades."""
    yaxis: dict[str, Any] = {"title": {"text": y_title}, "type": "log", "exponentformat": "power"}
    return {
        "height": 320,
        "margin": {"l": 70, "r": 10, "t": 55, "b": 45},
        "title": {"text": title, "font": {"size": 14}, "x": 0, "xanchor": "left", "y": 0.97},
        "xaxis": {"type": "log", "title": {"text": "tile size b"}, "dtick": math.log10(2)},
        "yaxis": yaxis,
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    }
