"""A policy's schedule as pictures: a Gantt chart (one lane per device) and each device's
utilization over time. Figures are Plotly's JSON (data + layout), drawn by plotly.min.js.

Both read the stored schedule (app/sim/schedule.py): per task its device, the CPU core running
the rest of a split (`partner`), the GPU share, start and end (seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.sim.schedule import Schedule

#: Tasks drawn in a Gantt chart. A browser draws ~2,000 bars per chart in well under a second;
#: ten policies of 100k tasks each would be a million SVG shapes, so larger schedules show their
#: first tasks (by index: arrival order for online workloads) and the page says so.
MAX_GANTT_TASKS = 2000
#: Time bins of the utilization chart.
UTILIZATION_BINS = 100
#: Plotly's default qualitative colours; categories beyond ten reuse them.
PALETTE = (
    "#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a",
    "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52",
)  # fmt: skip
#: How a split task is marked (on both of its lanes).
SPLIT_PATTERN = "/"
#: The utilization heatmap's colours, idle (0) to busy (1): busy is the strong colour. The stops
#: are ColorBrewer's sequential "Blues" (Brewer, colorbrewer2.org), spelled out: plotly.js's
#: *named* "Blues" runs the other way (dark blue at 0, pale grey at 1).
BUSY_COLORSCALE = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]


@dataclass(frozen=True)
class Categories:
    """Each task's category: `codes[i]` indexes `names` (app/sim/workload.py)."""

    codes: np.ndarray
    names: tuple[str, ...]


def gantt_figure(devices: list[str], schedule: Schedule, categories: Categories) -> dict[str, Any]:
    """The first MAX_GANTT_TASKS tasks as bars from start to end on their device's lane, one
    trace per category; a split task is drawn on its GPU's and its core's lanes, hatched."""
    shown = np.arange(min(MAX_GANTT_TASKS, schedule.num_tasks))
    traces: list[dict[str, Any]] = [_lanes_trace(devices)]
    for code, name in enumerate(categories.names):
        mine = shown[categories.codes[shown] == code]
        if mine.size:
            traces.append(_category_trace(devices, schedule, mine, name, code))
    return {
        "data": traces,
        "layout": {
            "barmode": "overlay",
            "bargap": 0.25,
            "height": 90 + 26 * len(devices),
            "margin": {"l": 70, "r": 20, "t": 10, "b": 40},
            "xaxis": {"title": {"text": "time (s)"}, "zeroline": False},
            "yaxis": {
                "type": "category",
                "categoryorder": "array",
                "categoryarray": devices,
                "autorange": "reversed",
            },
            "legend": {"title": {"text": "category"}},
        },
    }


def _lanes_trace(devices: list[str]) -> dict[str, Any]:
    """An invisible point per device, so a device that ran none of the drawn tasks keeps its
    lane."""
    return {
        "type": "scatter",
        "mode": "markers",
        "x": [0.0] * len(devices),
        "y": devices,
        "marker": {"opacity": 0},
        "hoverinfo": "skip",
        "showlegend": False,
    }


def _category_trace(
    devices: list[str], schedule: Schedule, tasks: np.ndarray, name: str, code: int
) -> dict[str, Any]:
    is_split = schedule.partner[tasks] >= 0
    whole, split = tasks[~is_split], tasks[is_split]
    # Whole tasks first: the legend draws a trace's first bar (plain, not hatched).
    rows = np.concatenate([whole, split, split])
    lanes = np.concatenate(
        [schedule.device[whole], schedule.device[split], schedule.partner[split]]
    )
    names = np.asarray(devices, dtype=object)
    return {
        "type": "bar",
        "orientation": "h",
        "name": name,
        "y": names[lanes].tolist(),
        "base": schedule.start[rows].tolist(),
        "x": (schedule.end[rows] - schedule.start[rows]).tolist(),
        "marker": {
            "color": PALETTE[code % len(PALETTE)],
            "pattern": {
                "shape": [SPLIT_PATTERN if p >= 0 else "" for p in schedule.partner[rows]],
                "fgcolor": "#222",
            },
        },
        "customdata": [_describe(devices, schedule, int(t)) for t in rows],
        "hovertemplate": f"%{{customdata}}<br>category {name}<extra></extra>",
    }


def _describe(devices: list[str], schedule: Schedule, task: int) -> str:
    start, end = float(schedule.start[task]), float(schedule.end[task])
    text = f"task {task}: {start:.4g} to {end:.4g} s"
    partner = int(schedule.partner[task])
    if partner >= 0:
        share = float(schedule.gpu_fraction[task])
        gpu = devices[int(schedule.device[task])]
        text += f"<br>split: {share:.0%} on {gpu}, {1 - share:.0%} on {devices[partner]}"
    return text


def utilization_figure(devices: list[str], schedule: Schedule) -> dict[str, Any]:
    """Per device, the share of each of UTILIZATION_BINS equal time bins it was busy (every
    task, not only the drawn ones), as a heatmap: devices down, time across."""
    horizon = float(schedule.end.max()) if schedule.num_tasks else 0.0
    edges = np.linspace(0.0, horizon or 1.0, UTILIZATION_BINS + 1)
    shares = [_busy_share(*schedule.busy_intervals(d), edges) for d in range(len(devices))]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": ((edges[:-1] + edges[1:]) / 2).tolist(),
                "y": devices,
                "z": [share.tolist() for share in shares],
                "zmin": 0,
                "zmax": 1,
                "colorscale": BUSY_COLORSCALE,
                "colorbar": {"title": {"text": "busy"}, "tickformat": ".0%"},
                "hovertemplate": "%{y} at %{x:.4g} s: %{z:.0%} busy<extra></extra>",
            }
        ],
        "layout": {
            "height": 90 + 18 * len(devices),
            "margin": {"l": 70, "r": 20, "t": 10, "b": 40},
            "xaxis": {"title": {"text": "time (s)"}},
            "yaxis": {"type": "category", "autorange": "reversed"},
        },
    }


def _busy_share(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The busy share of each bin between consecutive `edges`, from busy intervals.

    Busy time up to t is B(t) = sum(max(0, t - s_i)) - sum(max(0, t - e_i)), each sum read from
    sorted values and prefix sums: O((tasks + bins) log tasks), no tasks x bins matrix."""
    busy = _ramp_sum(np.sort(starts), edges) - _ramp_sum(np.sort(ends), edges)
    width = np.diff(edges)
    return np.clip(np.diff(busy) / width, 0.0, 1.0)


def _ramp_sum(points: np.ndarray, at: np.ndarray) -> np.ndarray:
    """sum(max(0, t - p)) over `points` (sorted) for each t in `at`."""
    prefix = np.concatenate([[0.0], np.cumsum(points)])
    below = np.searchsorted(points, at, side="left")
    return below * at - prefix[below]
