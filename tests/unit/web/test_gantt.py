import numpy as np
import pytest

from api.web.gantt import (
    MAX_GANTT_TASKS,
    SPLIT_PATTERN,
    Categories,
    _busy_share,
    gantt_figure,
    utilization_figure,
)
from app.sim.schedule import Schedule

DEVICES = ["cpu0", "cpu1", "gpu0"]


def schedule(device, partner, start, end, fraction=None) -> Schedule:
    n = len(device)
    return Schedule(
        device=np.array(device),
        partner=np.array(partner),
        gpu_fraction=np.array(fraction or [0.0] * n),
        start=np.array(start, dtype=float),
        end=np.array(end, dtype=float),
    )


def test_busy_share_is_the_overlap_of_intervals_with_each_bin():
    starts, ends = np.array([0.5, 2.0]), np.array([1.5, 4.0])
    share = _busy_share(starts, ends, np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    assert share == pytest.approx([0.5, 0.5, 1.0, 1.0])


def test_busy_share_of_a_brute_force_sum_of_overlaps():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 100, 300))
    ends = starts + rng.uniform(0, 0.3, 300)
    edges = np.linspace(0, 101, 37)
    overlap = np.clip(
        np.minimum(ends[:, None], edges[None, 1:]) - np.maximum(starts[:, None], edges[None, :-1]),
        0,
        None,
    ).sum(axis=0)
    assert _busy_share(starts, ends, edges) == pytest.approx(overlap / np.diff(edges))


def test_a_split_task_is_drawn_hatched_on_both_lanes_and_every_device_has_a_lane():
    # task 1 ran split: 40 % on gpu0 (device 2), the rest on cpu1 (device 1).
    placed = schedule([0, 2, 0], [-1, 1, -1], [0, 1, 3], [1, 2, 4], [0, 0.4, 0])
    figure = gantt_figure(DEVICES, placed, Categories(np.array([0, 1, 0]), ("k0", "k1")))
    lanes, k0, k1 = figure["data"]
    assert lanes["y"] == DEVICES
    assert (k0["name"], k0["y"], k0["base"]) == ("k0", ["cpu0", "cpu0"], [0.0, 3.0])
    assert (k1["y"], k1["base"], k1["x"]) == (["gpu0", "cpu1"], [1.0, 1.0], [1.0, 1.0])
    assert k1["marker"]["pattern"]["shape"] == [SPLIT_PATTERN, SPLIT_PATTERN]
    assert "split: 40% on gpu0, 60% on cpu1" in k1["customdata"][0]
    assert figure["layout"]["yaxis"]["categoryarray"] == DEVICES


def test_only_the_first_tasks_are_drawn():
    n = MAX_GANTT_TASKS + 10
    placed = schedule([0] * n, [-1] * n, list(range(n)), [t + 0.5 for t in range(n)])
    figure = gantt_figure(DEVICES, placed, Categories(np.zeros(n, dtype=np.int32), ("k0",)))
    assert len(figure["data"][1]["x"]) == MAX_GANTT_TASKS


def test_utilization_counts_a_split_on_both_devices():
    placed = schedule([2], [1], [0.0], [2.0], [0.5])
    z = utilization_figure(DEVICES, placed)["data"][0]["z"]
    assert [max(row) for row in z] == [0.0, 1.0, 1.0]


def relative_luminance(colour: str) -> float:
    """sRGB relative luminance of '#rrggbb' (WCAG 2.1), 0 black to 1 white."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_busy_is_the_strong_colour_of_the_utilization_heatmap():
    (trace,) = utilization_figure(DEVICES, schedule([0], [-1], [0.0], [1.0]))["data"]
    scale = trace["colorscale"]
    # A named scale is plotly.js's to resolve, and its "Blues" is pale at 1: spell the stops out.
    assert isinstance(scale, list), scale
    assert not trace.get("reversescale")
    assert [stop for stop, _ in scale] == sorted(stop for stop, _ in scale)
    darkness = [1 - relative_luminance(colour) for _, colour in scale]
    assert darkness == sorted(darkness) and darkness[-1] - darkness[0] > 0.8
