import numpy as np
import pytest

from app.sim.importers import workload_from_csv, workload_from_records
from app.sim.workload import InvalidWorkload, Workload

RECORDS = [
    {"id": "load", "size": 10.0, "intensity": 0.1, "memory": 500.0},
    {"id": "fft", "size": 400.0, "intensity": 0.95, "memory": 800.0, "parents": ["load"]},
    {"id": "filter", "size": 250.0, "intensity": 0.9, "parents": ["load"]},
    {"id": "save", "size": 5.0, "arrival": 1.5, "parents": ["fft", "filter"]},
]
CSV = """id,size,intensity,memory,arrival,parents
load,10,0.1,500,,
fft,400,0.95,800,,load
filter,250,0.9,,,load
save,5,,,1.5,fft;filter
"""


def assert_same_workload(a: Workload, b: Workload) -> None:
    for name in ("size", "intensity", "memory", "arrival", "parent_ptr", "parent_idx", "edge_data"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_records_become_tasks_in_order_with_defaults_for_missing_fields():
    workload = workload_from_records(RECORDS)
    assert workload.size.tolist() == [10.0, 400.0, 250.0, 5.0]
    assert workload.intensity.tolist() == [0.1, 0.95, 0.9, 0.5]
    assert workload.memory.tolist() == [500.0, 800.0, 0.0, 0.0]
    assert workload.arrival.tolist() == [0.0, 0.0, 0.0, 1.5]
    assert workload.parents(3).tolist() == [1, 2]
    assert not workload.edge_data.any()


def test_csv_and_records_give_identical_workloads():
    assert_same_workload(workload_from_csv(CSV), workload_from_records(RECORDS))


def test_csv_parents_may_be_separated_by_spaces_and_columns_come_in_any_order():
    text = "parents,size,id\n,1,a\n,2,b\na b,3,c\n"
    records = [
        {"id": "a", "size": 1},
        {"id": "b", "size": 2},
        {"id": "c", "size": 3, "parents": ["a", "b"]},
    ]
    assert_same_workload(workload_from_csv(text), workload_from_records(records))


def test_tasks_without_ids_are_called_by_their_position():
    workload = workload_from_records([{"size": 1.0}, {"size": 2.0, "parents": [0]}])
    assert workload.parents(1).tolist() == [0]
    assert workload_from_csv("size,parents\n1,\n2,0\n").parents(1).tolist() == [0]


def test_edge_data_is_what_each_parent_hands_over_in_parent_order():
    records = [
        {"id": "a", "size": 1.0},
        {"id": "b", "size": 1.0},
        {"id": "c", "size": 1.0, "parents": ["b", "a"], "edge_data": [20.0, 10.0]},
    ]
    workload = workload_from_records(records)
    by_parent = dict(zip(workload.parents(2).tolist(), workload.edge_data.tolist(), strict=True))
    assert by_parent == {0: 10.0, 1: 20.0}


def test_duplicate_csv_id_is_rejected_naming_both_lines():
    with pytest.raises(InvalidWorkload, match="line 4: id 'a' is already used by line 2"):
        workload_from_csv("id,size\na,1\nb,1\na,1\n")


def test_unknown_parent_is_rejected_naming_the_record_and_the_parent():
    records = [{"id": "a", "size": 1.0}, {"id": "b", "size": 1.0, "parents": ["a", "z"]}]
    with pytest.raises(InvalidWorkload, match="record 1: parent 'z' is not the id of any task"):
        workload_from_records(records)


def test_cycle_is_rejected_naming_its_tasks():
    records = [
        {"id": "a", "size": 1.0, "parents": ["b"]},
        {"id": "b", "size": 1.0, "parents": ["a"]},
    ]
    with pytest.raises(InvalidWorkload, match="cycle: 'a' -> 'b' -> 'a'"):
        workload_from_records(records)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,size\na,big\n", "line 2: size 'big' is not a finite number"),
        ("id,size\na,nan\n", "line 2: size 'nan' is not a finite number"),
        ("id,size,intensity\na,1,1.5\n", r"line 2: intensity '1.5' lies outside \[0, 1\]"),
        ("id,size,memory\na,1,-4\n", "line 2: memory '-4' lies outside"),
        ("id,size,memory\na,1,\nb,,3\n", "line 3: missing size"),
        ("id,memory\na,1\n", r"the size column \(or kernel and tile_size\) is required"),
        ("id,size,colour\na,1,red\n", r"unknown column\(s\) \['colour'\]"),
        ("id,size\na,1,2\n", "line 2: more cells than header columns"),
        ("", "no header row"),
    ],
    ids=[
        "bad number",
        "not finite",
        "intensity range",
        "negative memory",
        "missing size",
        "no size column",
        "unknown column",
        "extra cell",
        "empty",
    ],
)
def test_malformed_csv_is_rejected_naming_the_line_and_field(text, message):
    with pytest.raises(InvalidWorkload, match=message):
        workload_from_csv(text)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "x", "memroy": 1.0, "size": 1.0}, r"record 1: unknown field\(s\) \['memroy'\]"),
        ({"id": "x", "size": True}, "record 1: size True is not a finite number"),
        ({"id": "x", "size": 1.0, "parents": "a"}, "record 1: parents must be a list"),
        ({"id": "x", "size": 1.0, "parents": ["x"]}, "record 1: task 'x' lists itself as a parent"),
        ({"id": "x", "size": 1.0, "parents": ["a", "a"]}, "record 1: parent 'a' is listed twice"),
        ({"id": "x", "size": 1.0, "parents": ["a"], "edge_data": [1, 2]}, "one value per parent"),
        ({"id": "x", "size": 1.0, "parents": ["a"], "edge_data": [-1]}, "edge_data -1 lies"),
        ("size=1", "record 1 is not a mapping"),
    ],
    ids=[
        "typo",
        "bool",
        "parents string",
        "self",
        "twice",
        "edge_data length",
        "negative data",
        "not a mapping",
    ],
)
def test_malformed_record_is_rejected_naming_it(record, message):
    with pytest.raises(InvalidWorkload, match=message):
        workload_from_records([{"id": "a", "size": 1.0}, record])


def test_more_tasks_than_the_limit_are_rejected():
    with pytest.raises(InvalidWorkload, match="limit of 3"):
        workload_from_records(RECORDS, max_tasks=3)
    with pytest.raises(InvalidWorkload, match="limit of 3"):
        workload_from_csv(CSV, max_tasks=3)


def test_no_records_give_an_empty_workload():
    assert workload_from_records([]).num_tasks == 0
    assert workload_from_csv("id,size\n").num_tasks == 0


# Kernel calls

CALLS = [
    {"id": "f", "kernel": "potrf", "tile_size": 256},
    {"id": "t", "kernel": "trsm", "tile_size": 256, "parents": ["f"], "edge_data": [0.5]},
    {"id": "g", "kernel": "gemm", "tile_size": 128, "parents": ["t"], "memory": 7.0},
]


def test_a_kernel_call_states_its_size_intensity_category_and_memory():
    workload = workload_from_records(CALLS)
    assert workload.category_names == ("potrf", "trsm", "gemm")
    np.testing.assert_array_equal(workload.tile_size, [256, 256, 128])
    flops = [256**3 / 3 + 256**2 / 2 + 256 / 6, 256**3, 2 * 128**3]
    np.testing.assert_allclose(workload.size, np.array(flops) / 1e9, rtol=1e-12)
    np.testing.assert_array_equal(workload.intensity, 1.0)
    # One tile for potrf, two for trsm, and gemm's memory as given.
    np.testing.assert_allclose(workload.memory, [256**2 * 8 / 1e6, 2 * 256**2 * 8 / 1e6, 7.0])


def test_kernel_calls_read_the_same_from_csv():
    text = "id,kernel,tile_size,parents,memory\nf,potrf,256,,\nt,trsm,256,f,\ng,gemm,128,t,7\n"
    from_csv, from_records = workload_from_csv(text), workload_from_records(CALLS)
    np.testing.assert_array_equal(from_csv.tile_size, from_records.tile_size)
    np.testing.assert_array_equal(from_csv.size, from_records.size)
    assert from_csv.category_names == from_records.category_names


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([CALLS[0], {"id": "x", "size": 3.0}], "for every task or for none"),
        ([{**CALLS[0], "size": 3.0}], "follow"),
        ([{**CALLS[0], "category": "mine"}], "follow"),
        ([{"kernel": "svd", "tile_size": 64}], "not one of"),
        ([{"kernel": "gemm", "tile_size": 64.5}], "whole number"),
        ([{"kernel": "gemm", "tile_size": 0}], "outside"),
        ([{"kernel": "gemm"}], "tile_size"),
    ],
)
def test_a_malformed_kernel_call_names_its_record(records, message):
    with pytest.raises(InvalidWorkload, match=message):
        workload_from_records(records)
