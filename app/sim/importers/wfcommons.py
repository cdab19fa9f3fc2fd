"""Workloads from WfCommons instances (WfFormat JSON, https://github.com/wfcommons/wfformat).

WfCommons publishes traces of real scientific workflows (Montage, Epigenomics, Blast, ...) and
generates synthetic ones shaped like them. An instance records what a run took, not what a task
needs, so mapping it onto our task model is a modelling choice:

- size (GFLOP) = runtime (s) x cores x reference_speed (GFLOP/s): the runtime is taken as measured
  on cores like the reference one (default: one default CPU core, 40 GFLOP/s), so a task that ran
  t seconds on c cores did t x c core-seconds of work. Cores default to 1 and count as 1 below 1.
- memory (MB) = total size of the task's input files, capped at `mix.max_memory`: the data that
  must be resident where it runs. 1 MB = 2**20 bytes, as device memory is counted in cluster.py.
- edge parent -> child (MB) = total size of the files the parent writes and the child reads; 0 MB
  when they share none, or the instance has no file information (unknown file ids count 0 bytes).
- intensity: the format does not record it, so each task *category* (every mProject task, say)
  gets one value from `mix`'s bimodal intensity distribution, drawn by a generator seeded with
  (intensity_seed, crc32 of the category): the same in every call, process and instance.
- arrival = 0 s for every task: an instance is one static DAG.

Two layouts are read:

- WfFormat >= 1.5 (what wfcommons 1.6 writes): workflow.specification.tasks[] (id; name, which is
  the category; parents; children; inputFiles and outputFiles as file ids),
  workflow.specification.files[] (id, sizeInBytes) and workflow.execution.tasks[] (id,
  runtimeInSeconds, coreCount).
- WfFormat <= 1.4: workflow.tasks[] (workflow.jobs[] before 1.3), where `name` identifies a task
  and parents and children refer to names (or to the optional `id`); category; runtimeInSeconds
  (runtime before 1.4); cores; files[] of {link: input | output, name, sizeInBytes (size before
  1.4)}. Without a category, the name minus a trailing "_123" or "_ID0000123" stands for it (the
  `type` field says compute, transfer or auxiliary, which is no category).

Dependencies may be listed at either end (a parent's children, a child's parents, or both); their
union is used.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.sim.cluster import DEFAULT_CPU
from app.sim.generators import TaskMix
from app.sim.importers.inline import MAX_TASKS, workload_from_records
from app.sim.workload import InvalidWorkload, Workload

BYTES_PER_MB = 2**20
_DEFAULT_MIX = TaskMix()
_NUMBERED_SUFFIX = re.compile(r"_(?:ID)?\d+$")


@dataclass(frozen=True)
class _Task:
    """One task, whichever layout it came from."""

    id: str
    category: str
    runtime: float  # seconds
    cores: float
    inputs: dict[str, float]  # file id -> MB
    outputs: frozenset[str]  # file ids
    parents: list[str]
    children: list[str]


def workload_from_wfcommons(
    document: dict,
    *,
    reference_speed: float = DEFAULT_CPU.speed,
    intensity_seed: int = 0,
    mix: TaskMix = _DEFAULT_MIX,
    max_tasks: int = MAX_TASKS,
) -> Workload:
    """The DAG of a parsed WfFormat document (`json.load` of an instance file), tasks in order."""
    tasks = _read_tasks(document, max_tasks)
    parents = _parents_by_task(tasks)
    edge_data = _edge_data(tasks, parents)
    intensity = {
        category: _category_intensity(category, intensity_seed, mix)
        for category in {task.category for task in tasks}
    }
    records = [
        {
            "id": task.id,
            "size": task.runtime * max(task.cores, 1.0) * reference_speed,
            "intensity": intensity[task.category],
            "category": task.category,
            "memory": min(sum(task.inputs.values()), mix.max_memory),
            "parents": parents[task.id],
            "edge_data": edge_data[task.id],
        }
        for task in tasks
    ]
    return workload_from_records(records, max_tasks=max_tasks)


def _category_intensity(category: str, seed: int, mix: TaskMix) -> float:
    """The intensity every task of `category` gets: one draw from the mix's bimodal distribution,
    seeded by (seed, crc32 of the category) so it does not depend on what else is imported."""
    entropy = [seed, zlib.crc32(category.encode())]
    _, intensity, _ = mix.draw(1, np.random.default_rng(np.random.SeedSequence(entropy)))
    return float(intensity[0])


def _parents_by_task(tasks: list[_Task]) -> dict[str, list[str]]:
    """Task id -> its parents' ids: the union of `parents` lists and `children` lists."""
    found: dict[str, dict[str, None]] = {task.id: {} for task in tasks}  # dicts as ordered sets
    for task in tasks:
        for parent in task.parents:
            _check_known(found, parent, f"task {task.id!r} lists parent {parent!r}")
            found[task.id][parent] = None
        for child in task.children:
            _check_known(found, child, f"task {task.id!r} lists child {child!r}")
            found[child][task.id] = None
    return {task_id: list(parents) for task_id, parents in found.items()}


def _check_known(tasks: dict[str, Any], task_id: str, claim: str) -> None:
    if task_id not in tasks:
        raise InvalidWorkload(f"{claim}, which is not a task of the instance")


def _edge_data(tasks: list[_Task], parents: dict[str, list[str]]) -> dict[str, list[float]]:
    """Task id -> MB received from each of its parents (in `parents` order)."""
    writers: dict[str, list[str]] = {}
    for task in tasks:
        for file_id in task.outputs:
            writers.setdefault(file_id, []).append(task.id)
    data = {}
    for task in tasks:
        received = dict.fromkeys(parents[task.id], 0.0)
        for file_id, megabytes in task.inputs.items():
            for writer in writers.get(file_id, ()):
                if writer in received:
                    received[writer] += megabytes
        data[task.id] = list(received.values())
    return data


def _read_tasks(document: Any, max_tasks: int) -> list[_Task]:
    workflow = document.get("workflow") if isinstance(document, dict) else None
    if not isinstance(workflow, dict):
        raise InvalidWorkload("not a WfCommons instance: expected an object with a 'workflow'")
    if "specification" in workflow:
        return _read_current(workflow, max_tasks)
    if "tasks" in workflow or "jobs" in workflow:
        return _read_legacy(workflow, max_tasks)
    raise InvalidWorkload(
        "unknown WfCommons layout: expected workflow.specification (WfFormat >= 1.5) "
        "or workflow.tasks (WfFormat <= 1.4)"
    )


def _read_current(workflow: dict, max_tasks: int) -> list[_Task]:
    """WfFormat >= 1.5: structure in `specification`, runtimes in `execution`."""
    specification = workflow["specification"]
    entries = _task_list(specification, "tasks", "workflow.specification", max_tasks)
    file_mb = _file_sizes(_list(specification, "files", "workflow.specification"))
    if "execution" not in workflow:
        raise InvalidWorkload("the workflow has no 'execution' section, which holds the runtimes")
    runs = {
        str(_field(run, "id", f"execution task {position}")): run
        for position, run in enumerate(_list(workflow["execution"], "tasks", "workflow.execution"))
    }
    tasks = []
    for position, entry in enumerate(entries):
        task_id = str(_field(entry, "id", f"task {position}"))
        what = f"task {task_id!r}"
        run = runs.get(task_id)
        if run is None:
            raise InvalidWorkload(f"{what} has no entry in workflow.execution.tasks (runtime)")
        tasks.append(
            _Task(
                id=task_id,
                category=str(_field(entry, "name", what)),
                runtime=_amount(run, "runtimeInSeconds", what),
                cores=_amount(run, "coreCount", what) if "coreCount" in run else 1.0,
                inputs={name: file_mb.get(name, 0.0) for name in _ids(entry, "inputFiles", what)},
                outputs=frozenset(_ids(entry, "outputFiles", what)),
                parents=_ids(entry, "parents", what),
                children=_ids(entry, "children", what),
            )
        )
    return tasks


def _file_sizes(files: list) -> dict[str, float]:
    """File id -> MB, from WfFormat >= 1.5's workflow.specification.files."""
    sizes = {}
    for position, file in enumerate(files):
        file_id = str(_field(file, "id", f"file {position}"))
        sizes[file_id] = _amount(file, "sizeInBytes", f"file {file_id!r}") / BYTES_PER_MB
    return sizes


def _read_legacy(workflow: dict, max_tasks: int) -> list[_Task]:
    """WfFormat <= 1.4: one list of tasks, each with its runtime and files."""
    key = "tasks" if "tasks" in workflow else "jobs"
    entries = _task_list(workflow, key, "workflow", max_tasks)
    names = [
        str(_field(entry, "name", f"task {position}")) for position, entry in enumerate(entries)
    ]
    aliases = {
        str(entry["id"]): name for entry, name in zip(entries, names, strict=True) if "id" in entry
    }
    reference = {**aliases, **{name: name for name in names}}  # a name wins over an old id
    tasks = []
    for entry, name in zip(entries, names, strict=True):
        what = f"task {name!r}"
        inputs, outputs = _legacy_files(entry, what)
        tasks.append(
            _Task(
                id=name,
                category=str(entry.get("category") or _NUMBERED_SUFFIX.sub("", name)),
                runtime=_amount(entry, _key(entry, "runtimeInSeconds", before_1_4="runtime"), what),
                cores=_amount(entry, "cores", what) if "cores" in entry else 1.0,
                inputs=inputs,
                outputs=outputs,
                parents=[reference.get(ref, ref) for ref in _ids(entry, "parents", what)],
                children=[reference.get(ref, ref) for ref in _ids(entry, "children", what)],
            )
        )
    return tasks


def _legacy_files(entry: dict, what: str) -> tuple[dict[str, float], frozenset[str]]:
    """(input file -> MB, output files) of a <= 1.4 task; a file is known by its path + name."""
    inputs: dict[str, float] = {}
    outputs: set[str] = set()
    for file in _list(entry, "files", what):
        name = str(_field(file, "name", f"a file of {what}"))
        name = str(file.get("path", "")) + name
        file_what = f"file {name!r} of {what}"
        size_key = _key(file, "sizeInBytes", before_1_4="size")
        megabytes = _amount(file, size_key, file_what) / BYTES_PER_MB
        link = str(_field(file, "link", file_what)).lower()
        if link == "input":
            inputs[name] = megabytes
        elif link == "output":
            outputs.add(name)
        else:
            raise InvalidWorkload(f"{file_what}: link must be 'input' or 'output', not {link!r}")
    return inputs, frozenset(outputs)


def _task_list(container: Any, key: str, where: str, max_tasks: int) -> list:
    tasks = _list(container, key, where)
    if len(tasks) > max_tasks:
        raise InvalidWorkload(f"the instance has {len(tasks)} tasks, over the limit of {max_tasks}")
    return tasks


def _field(entry: Any, key: str, what: str) -> Any:
    """entry[key], or an InvalidWorkload naming `what` and the missing field."""
    if not isinstance(entry, dict):
        raise InvalidWorkload(f"{what} is not a JSON object")
    if key not in entry:
        raise InvalidWorkload(f"{what} has no {key!r}")
    return entry[key]


def _key(entry: dict, key: str, before_1_4: str) -> str:
    """`key`, or its name before WfFormat 1.4 if only that one is present."""
    return before_1_4 if before_1_4 in entry and key not in entry else key


def _list(entry: Any, key: str, what: str) -> list:
    """entry[key] as a list; an absent key is an empty list."""
    if not isinstance(entry, dict):
        raise InvalidWorkload(f"{what} is not a JSON object")
    value = entry.get(key, [])
    if not isinstance(value, list):
        raise InvalidWorkload(f"{what}: {key!r} must be a list")
    return value


def _ids(entry: dict, key: str, what: str) -> list[str]:
    return [str(item) for item in _list(entry, key, what)]


def _amount(entry: Any, key: str, what: str) -> float:
    """A required non-negative finite number (a runtime, a size in bytes, a core count)."""
    value = _field(entry, key, what)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidWorkload(f"{what}: {key!r} must be a number, got {value!r}")
    if value < 0:
        raise InvalidWorkload(f"{what}: {key!r} must be >= 0, got {value!r}")
    return float(value)
