import copy
import json
from pathlib import Path

import numpy as np
import pytest

from app.sim.generators import TaskMix
from app.sim.importers import workload_from_wfcommons
from app.sim.workload import InvalidWorkload, Workload

FIXTURES = Path(__file__).parents[3] / "fixtures" / "wfcommons"
GENERATED = ["montage.json", "epigenomics.json", "blast.json"]  # wfcommons 1.6, WfFormat 1.6
LEGACY = "genome-schema-1.4.json"  # hand-written, WfFormat 1.4
MB = 2**20


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def edges_by_id(workload: Workload, ids: list[str]) -> dict[tuple[str, str], float]:
    """(parent id, child id) -> MB for every edge of the workload."""
    child = np.repeat(np.arange(workload.num_tasks), np.diff(workload.parent_ptr))
    return {
        (ids[parent], ids[kid]): float(data)
        for parent, kid, data in zip(workload.parent_idx, child, workload.edge_data, strict=True)
    }


def spec_tasks(document: dict) -> list[dict]:
    return document["workflow"]["specification"]["tasks"]


def legacy(*tasks: dict) -> dict:
    return {"schemaVersion": "1.4", "workflow": {"tasks": list(tasks)}}


def legacy_task(name: str, parents: tuple[str, ...] = (), **fields: object) -> dict:
    return {"name": name, "parents": list(parents), "runtimeInSeconds": 1.0, **fields}


@pytest.mark.parametrize("name", GENERATED)
def test_generated_instance_keeps_every_task_and_every_dependency(name):
    document = load(name)
    tasks = spec_tasks(document)
    workload = workload_from_wfcommons(document)
    declared = {(parent, task["id"]) for task in tasks for parent in task["parents"]}
    declared |= {(task["id"], child) for task in tasks for child in task["children"]}
    assert workload.num_tasks == len(tasks)
    assert workload.num_edges == len(declared)
    assert set(edges_by_id(workload, [task["id"] for task in tasks])) == declared


@pytest.mark.parametrize("name", GENERATED)
def test_size_is_runtime_times_cores_times_reference_speed(name):
    document = load(name)
    runs = {run["id"]: run for run in document["workflow"]["execution"]["tasks"]}
    expected = [
        runs[task["id"]]["runtimeInSeconds"] * runs[task["id"]].get("coreCount", 1) * 100.0
        for task in spec_tasks(document)
    ]
    workload = workload_from_wfcommons(document, reference_speed=100.0)
    assert workload.size == pytest.approx(expected)


@pytest.mark.parametrize("name", GENERATED)
def test_edge_carries_the_files_the_parent_writes_and_the_child_reads(name):
    document = load(name)
    tasks = {task["id"]: task for task in spec_tasks(document)}
    file_mb = {
        f["id"]: f["sizeInBytes"] / MB for f in document["workflow"]["specification"]["files"]
    }
    edges = edges_by_id(workload_from_wfcommons(document), list(tasks))
    for (parent, child), data in edges.items():
        shared = set(tasks[parent]["outputFiles"]) & set(tasks[child]["inputFiles"])
        assert data == pytest.approx(sum(file_mb[file_id] for file_id in shared))
    assert all(data > 0 for data in edges.values())  # the generator links every edge by a file


def test_memory_is_the_input_files_capped_at_the_mix_limit():
    document = load("montage.json")
    file_mb = {
        f["id"]: f["sizeInBytes"] / MB for f in document["workflow"]["specification"]["files"]
    }
    inputs = np.array(
        [sum(file_mb[f] for f in task["inputFiles"]) for task in spec_tasks(document)]
    )
    cap = float(np.median(inputs))
    capped = workload_from_wfcommons(document, mix=TaskMix(max_memory=cap))
    assert workload_from_wfcommons(document).memory == pytest.approx(inputs)
    assert capped.memory == pytest.approx(np.minimum(inputs, cap))


def test_tasks_of_one_category_share_one_intensity_in_every_call():
    document = load("montage.json")
    first, second = workload_from_wfcommons(document), workload_from_wfcommons(document)
    categories = np.array([task["name"] for task in spec_tasks(document)])
    for category in set(categories):
        assert np.unique(first.intensity[categories == category]).size == 1
    assert np.unique(first.intensity).size == len(set(categories))
    assert np.array_equal(first.intensity, second.intensity)


def test_another_intensity_seed_changes_the_intensities():
    document = load("epigenomics.json")
    seeded = workload_from_wfcommons(document, intensity_seed=1)
    assert not np.array_equal(workload_from_wfcommons(document).intensity, seeded.intensity)


def test_a_category_gets_the_same_intensity_in_any_instance():
    alone = workload_from_wfcommons(legacy(legacy_task("mProject_1", category="mProject")))
    crowded = workload_from_wfcommons(load("montage.json"))
    position = [task["name"] for task in spec_tasks(load("montage.json"))].index("mProject")
    assert alone.intensity[0] == crowded.intensity[position]


def test_schema_1_4_takes_dependencies_from_parents_and_children_alike():
    document = load(LEGACY)
    names = [task["name"] for task in document["workflow"]["tasks"]]
    edges = edges_by_id(workload_from_wfcommons(document), names)
    assert set(edges) == {
        ("split_ID0000001", "align_ID0000002"),
        ("split_ID0000001", "align_ID0000003"),  # listed only as a child of split
        ("align_ID0000002", "merge_ID0000004"),
        ("align_ID0000003", "merge_ID0000004"),  # listed by its old id, ID0000003
        ("merge_ID0000004", "stats_ID0000005"),
        ("align_ID0000002", "plot_00000006"),  # listed only as a child of align_ID0000002
    }


def test_schema_1_4_edges_carry_shared_files_and_memory_holds_the_inputs():
    document = load(LEGACY)
    names = [task["name"] for task in document["workflow"]["tasks"]]
    workload = workload_from_wfcommons(document)
    edges = edges_by_id(workload, names)
    assert edges[("align_ID0000002", "merge_ID0000004")] == pytest.approx(8.0)  # aln1.bam
    assert edges[("split_ID0000001", "align_ID0000003")] == pytest.approx(30.0)  # part2.fa
    assert workload.memory[names.index("align_ID0000002")] == pytest.approx(20.0 + 5.0)
    assert workload.memory[names.index("merge_ID0000004")] == pytest.approx(8.0 + 12.0)


def test_schema_1_4_size_counts_the_work_of_every_core():
    workload = workload_from_wfcommons(load(LEGACY), reference_speed=40.0)
    assert workload.size[:3] == pytest.approx([10.0 * 40.0, 40.0 * 4 * 40.0, 55.5 * 4 * 40.0])


def test_without_a_category_the_name_minus_its_number_stands_for_it():
    document = legacy(
        legacy_task("stats_ID0000005"),
        legacy_task("other", category="stats"),
        legacy_task("plot_00000006"),
        legacy_task("renamed", category="plot"),
    )
    intensity = workload_from_wfcommons(document).intensity
    assert intensity[0] == intensity[1]
    assert intensity[2] == intensity[3]


def test_field_names_from_before_schema_1_4_are_read():
    document = {
        "schemaVersion": "1.0",
        "workflow": {
            "jobs": [
                {
                    "name": "a",
                    "runtime": 2.0,
                    "files": [{"link": "output", "name": "x", "size": MB}],
                },
                {
                    "name": "b",
                    "runtime": 3.0,
                    "parents": ["a"],
                    "files": [{"link": "input", "name": "x", "size": MB}],
                },
            ]
        },
    }
    workload = workload_from_wfcommons(document, reference_speed=1.0)
    assert workload.size == pytest.approx([2.0, 3.0])
    assert workload.edge_data == pytest.approx([1.0])


def test_parent_that_is_not_a_task_is_rejected_naming_both():
    document = load("montage.json")
    task = spec_tasks(document)[3]
    task["parents"].append("mGhost_00000099")
    with pytest.raises(InvalidWorkload, match=f"'{task['id']}' lists parent 'mGhost_00000099'"):
        workload_from_wfcommons(document)


def test_child_that_is_not_a_task_is_rejected():
    document = legacy(legacy_task("a", children=["nowhere"]))
    with pytest.raises(InvalidWorkload, match="task 'a' lists child 'nowhere'"):
        workload_from_wfcommons(document)


def test_task_without_an_execution_record_is_rejected_naming_it():
    document = load("blast.json")
    runs = document["workflow"]["execution"]["tasks"]
    missing = runs.pop(5)["id"]
    with pytest.raises(
        InvalidWorkload, match=f"task '{missing}' has no entry in workflow.execution"
    ):
        workload_from_wfcommons(document)


def test_missing_runtime_is_rejected_naming_the_task_and_the_field():
    document = load(LEGACY)
    del document["workflow"]["tasks"][2]["runtimeInSeconds"]
    with pytest.raises(InvalidWorkload, match="task 'align_ID0000003' has no 'runtimeInSeconds'"):
        workload_from_wfcommons(document)


def test_missing_task_name_is_rejected_naming_the_task_and_the_field():
    document = load("epigenomics.json")
    task = spec_tasks(document)[0]
    del task["name"]
    with pytest.raises(InvalidWorkload, match=f"task '{task['id']}' has no 'name'"):
        workload_from_wfcommons(document)


def test_negative_runtime_is_rejected():
    document = load("montage.json")
    run = document["workflow"]["execution"]["tasks"][0]
    run["runtimeInSeconds"] = -1.0
    with pytest.raises(InvalidWorkload, match=f"task '{run['id']}'.*must be >= 0"):
        workload_from_wfcommons(document)


def test_cycle_is_rejected_naming_its_tasks():
    document = legacy(legacy_task("a", ["c"]), legacy_task("b", ["a"]), legacy_task("c", ["b"]))
    with pytest.raises(InvalidWorkload, match="cycle: 'a' -> 'b' -> 'c' -> 'a'"):
        workload_from_wfcommons(document)


def test_more_tasks_than_the_limit_are_rejected():
    with pytest.raises(InvalidWorkload, match="58 tasks, over the limit of 10"):
        workload_from_wfcommons(load("montage.json"), max_tasks=10)


@pytest.mark.parametrize(
    "document",
    [[], {"name": "x"}, {"workflow": {"makespanInSeconds": 1}}, {"workflow": []}],
    ids=["a list", "no workflow", "unknown layout", "workflow not an object"],
)
def test_document_that_is_not_a_wfcommons_instance_is_rejected(document):
    with pytest.raises(InvalidWorkload, match="WfCommons"):
        workload_from_wfcommons(document)


def test_importing_does_not_modify_the_document():
    document = load("blast.json")
    before = copy.deepcopy(document)
    workload_from_wfcommons(document)
    assert document == before
