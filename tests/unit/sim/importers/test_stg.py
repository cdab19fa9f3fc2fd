from pathlib import Path

import numpy as np
import pytest

from app.sim.cluster import DEFAULT_GPU
from app.sim.generators import TaskMix
from app.sim.importers import workload_from_stg
from app.sim.workload import InvalidWorkload, Workload

FIXTURES = Path(__file__).parents[3] / "fixtures" / "stg"
COSTS = [0, 4, 3, 5, 2, 6, 1, 0]  # six_tasks.stg, dummy entry and exit included
EDGES = {(0, 1), (0, 2), (1, 3), (2, 3), (1, 4), (3, 5), (4, 5), (2, 6), (5, 7), (6, 7)}
COMMUNICATION = {(1, 3): 2, (2, 3): 1, (1, 4): 3, (3, 5): 1, (4, 5): 2, (2, 6): 4}  # the rest 0


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def edges_of(workload: Workload) -> dict[tuple[int, int], float]:
    child = np.repeat(np.arange(workload.num_tasks), np.diff(workload.parent_ptr))
    return {
        (int(parent), int(kid)): float(data)
        for parent, kid, data in zip(workload.parent_idx, child, workload.edge_data, strict=True)
    }


def test_six_task_graph_keeps_its_dummy_entry_and_exit_as_empty_tasks():
    workload = workload_from_stg(read("six_tasks.stg"), reference_speed=40.0)
    assert workload.num_tasks == 8
    assert workload.size == pytest.approx([cost * 40.0 for cost in COSTS])
    assert workload.size[0] == workload.size[7] == 0.0
    assert not workload.arrival.any()


def test_edges_are_the_listed_predecessors_without_data():
    edges = edges_of(workload_from_stg(read("six_tasks.stg")))
    assert set(edges) == EDGES
    assert not any(edges.values())


def test_pairs_variant_gives_the_same_graph_with_communication_over_a_gpu_link():
    plain = workload_from_stg(read("six_tasks.stg"))
    paired = workload_from_stg(read("six_tasks_comm.stg"))
    edges = edges_of(paired)
    assert set(edges) == EDGES
    assert np.array_equal(plain.size, paired.size)
    for edge, data in edges.items():
        assert data == pytest.approx(COMMUNICATION.get(edge, 0) * DEFAULT_GPU.bandwidth)


def test_intensity_and_memory_are_drawn_deterministically_from_the_seed():
    text = read("six_tasks.stg")
    first, again = workload_from_stg(text), workload_from_stg(text)
    other = workload_from_stg(text, intensity_seed=1)
    assert np.array_equal(first.intensity, again.intensity)
    assert np.array_equal(first.memory, again.memory)
    assert not np.array_equal(first.intensity, other.intensity)
    assert ((first.intensity >= 0) & (first.intensity <= 1)).all()


def test_memory_follows_the_mix_ratio_applied_to_the_real_size():
    mix = TaskMix(
        memory_noise=0.0, max_size=50.0, max_memory=3_000.0
    )  # noise-free, unclipped draws
    workload = workload_from_stg(read("six_tasks.stg"), mix=mix, reference_speed=40.0)
    expected = np.minimum(np.array(COSTS) * 40.0 * mix.mb_per_gflop, mix.max_memory)
    assert workload.memory == pytest.approx(expected)


def test_comments_blank_lines_and_trailing_text_are_ignored():
    text = "# a comment before\n\n 1\n0 0 0\n\n1 5 1 0\n2 0 1 1\nnot an STG line at all\n"
    workload = workload_from_stg(text, reference_speed=1.0)
    assert workload.size == pytest.approx([0.0, 5.0, 0.0])
    assert set(edges_of(workload)) == {(0, 1), (1, 2)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("2 4\n", "line 1: expected the task count alone"),
        ("1\n0 0 0\n1 x 1 0\n2 0 1 1\n", "line 3: 'x' is not an integer"),
        ("1\n0 0 0\n1 2.5 1 0\n2 0 1 1\n", "line 3: '2.5' is not an integer"),
        ("1\n0 0 0\n2 5 1 0\n2 0 1 1\n", "line 3: expected task 1, found 2"),
        (
            "1\n0 0 0\n1 5 1 2\n2 0 1 1\n",
            "line 3: task 1 names predecessor 2, which is not an earlier",
        ),
        ("1\n0 0 0\n1 5 1 1\n2 0 1 1\n", "line 3: task 1 names predecessor 1"),
        ("1\n0 0 0\n1 5 1 -3\n2 0 1 1\n", "line 3: task 1 names predecessor -3"),
        ("1\n0 0 0\n1 5 2 0 0\n2 0 1 1\n", "line 3: task 1 lists predecessor 0 twice"),
        ("1\n0 0 0\n1 5 2 0\n2 0 1 1\n", "line 3: task 1 declares 2 predecessors but 1 numbers"),
        ("1\n0 0 0\n1 -5 1 0\n2 0 1 1\n", "line 3: cost and predecessor count must be >= 0"),
        ("1\n0 0 0\n1 5\n2 0 1 1\n", "line 3: expected 'id cost predecessors"),
        ("2\n0 0 0\n1 5 1 0\n2 0 1 1\n", "4 task lines .* but only 3 follow"),
        ("-1\n", "line 1: task count -1"),
    ],
    ids=[
        "empty",
        "header",
        "non-integer",
        "fractional",
        "out of order",
        "later predecessor",
        "self loop",
        "negative predecessor",
        "duplicate predecessor",
        "token count",
        "negative cost",
        "short line",
        "too few lines",
        "negative count",
    ],
)
def test_malformed_stg_text_is_rejected_naming_the_line(text, message):
    with pytest.raises(InvalidWorkload, match=message):
        workload_from_stg(text)


def test_more_tasks_than_the_limit_are_rejected():
    with pytest.raises(InvalidWorkload, match=r"task count 6 is not in \[0, 3\]"):
        workload_from_stg(read("six_tasks.stg"), max_tasks=5)
