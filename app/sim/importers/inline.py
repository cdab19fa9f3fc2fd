"""Workloads from plain task records or a CSV table: hand-made examples and small experiments.

A record describes one task:

    {"id": "b", "size": 120.0, "intensity": 0.9, "memory": 800.0, "arrival": 0.0,
     "parents": ["a"], "edge_data": [64.0], "category": "gemm"}

Units: size in GFLOP, memory in MB, arrival in seconds since the start, edge_data in MB per
parent (what that parent hands to this task, in the order of `parents`); category names the kind
of kernel (any text; a label: these tasks run as the cost model says, knowledge.py). Only size
is required; intensity defaults to 0.5, memory and arrival to 0, parents to none, edge_data to
0 MB, category to "default".

**Kernel calls.** A record may instead say which kernel of a kernel profile it calls and on
which tiles: `{"id": "f", "kernel": "potrf", "tile_size": 512, "parents": [...]}`. Its size
(the kernel's flops), intensity (1) and category (the kernel) follow from that, as for a tiled
DAG's tasks (tiled.py); memory defaults to the tiles it touches (kernelmix.TILES_TOUCHED, b^2 x 8
bytes each). Such a workload runs on the times the cluster's kernel profile measured
(measured.py). Every record is a kernel call, or none is.

Ids are compared as text, so 7 and "7" name the same task; a task without an id is called by its
position (from 0). Unknown fields are rejected rather than ignored, so that a typo ("memroy")
cannot fall back to a default unnoticed.

The CSV form has a header row naming some of the columns id, size, intensity, memory, arrival,
parents, category (size is required). Parents are ids separated by ';' or spaces; an empty cell
takes the default. The same data as records or as CSV gives the same workload.
"""

from __future__ import annotations

import csv
import graphlib
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.sim.kernelmix import TILES_TOUCHED
from app.sim.tiled import BYTES_PER_ELEMENT, kernel_flops
from app.sim.workload import DEFAULT_CATEGORY, InvalidWorkload, Workload

MAX_TASKS = 200_000
MAX_TILE_SIZE = 8192  # as a tiled workload's (runspec.py)

CSV_COLUMNS = (
    "id",
    "size",
    "intensity",
    "memory",
    "arrival",
    "parents",
    "category",
    "kernel",
    "tile_size",
)
#: What a kernel call states instead of its size, intensity and category.
KERNEL_FIELDS = ("kernel", "tile_size")
_FIELDS = frozenset((*CSV_COLUMNS, "edge_data"))
_DEFAULTS = {"intensity": 0.5, "memory": 0.0, "arrival": 0.0}
_BOUNDS = {
    "size": (0.0, math.inf),
    "intensity": (0.0, 1.0),
    "memory": (0.0, math.inf),
    "arrival": (0.0, math.inf),
}


def workload_from_records(
    records: Sequence[Mapping[str, Any]], *, max_tasks: int = MAX_TASKS
) -> Workload:
    """One task per record, in order; errors name the record by its position ("record 3")."""
    if len(records) > max_tasks:
        raise InvalidWorkload(f"{len(records)} tasks exceed the limit of {max_tasks}")
    return _assemble(records, [f"record {position}" for position in range(len(records))])


def workload_from_csv(text: str, *, max_tasks: int = MAX_TASKS) -> Workload:
    """One task per row after the header; errors name the row by its line in `text`."""
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    if not reader.fieldnames:
        raise InvalidWorkload("the CSV text has no header row")
    reader.fieldnames = [name.strip() for name in reader.fieldnames]
    unknown = sorted(set(reader.fieldnames) - set(CSV_COLUMNS))
    if unknown:
        raise InvalidWorkload(f"CSV header: unknown column(s) {unknown}; known: {CSV_COLUMNS}")
    if "size" not in reader.fieldnames and "kernel" not in reader.fieldnames:
        raise InvalidWorkload("CSV header: the size column (or kernel and tile_size) is required")
    records: list[dict[str, Any]] = []
    labels: list[str] = []
    for row in reader:
        if None in row:
            raise InvalidWorkload(f"line {reader.line_num}: more cells than header columns")
        if len(records) == max_tasks:
            raise InvalidWorkload(f"the CSV has more than the limit of {max_tasks} tasks")
        records.append(_record_from_row(row))
        labels.append(f"line {reader.line_num}")
    return _assemble(records, labels)


def _record_from_row(row: Mapping[str, str | None]) -> dict[str, Any]:
    record: dict[str, Any] = {
        column: cell.strip() for column, cell in row.items() if cell and cell.strip()
    }
    if "parents" in record:
        record["parents"] = record["parents"].replace(";", " ").split()
    return record


def _assemble(records: Sequence[Any], labels: list[str]) -> Workload:
    index = _index_by_id(records, labels)
    calls = _kernel_calls(records, labels)
    if calls is not None:
        sized = zip(records, calls, strict=True)
        records = [_as_sized(record, kernel, b) for record, (kernel, b) in sized]
    columns = {name: _column(records, labels, name) for name in _BOUNDS}
    pairs, edge_data = _edges(records, labels, index)
    try:
        workload = Workload.from_edges(
            columns["size"],
            columns["intensity"],
            columns["memory"],
            columns["arrival"],
            edges=pairs,
            edge_data=np.array(edge_data, dtype=float),
        )
    except InvalidWorkload as error:
        cycle = _find_cycle(pairs, list(index))
        if cycle is None:
            raise
        raise InvalidWorkload(f"the dependencies contain a cycle: {cycle}") from error
    workload = workload.with_categories(
        [_category(record, label) for record, label in zip(records, labels, strict=True)]
    )
    if calls is None:
        return workload
    return workload.evolve(tile_size=np.array([b for _, b in calls], dtype=np.int64))


def _kernel_calls(
    records: Sequence[Mapping[str, Any]], labels: list[str]
) -> list[tuple[str, int]] | None:
    """Each record's (kernel, tile size) when the records are kernel calls, else None."""
    calling = [any(record.get(name) is not None for name in KERNEL_FIELDS) for record in records]
    if not any(calling):
        return None
    calls = []
    for record, label, call in zip(records, labels, calling, strict=True):
        if not call:
            raise InvalidWorkload(
                f"{label}: give kernel and tile_size for every task or for none (other tasks "
                "call kernels)"
            )
        stated = sorted(name for name in ("size", "intensity", "category") if name in record)
        if stated:
            raise InvalidWorkload(
                f"{label}: {', '.join(stated)} follow(s) from kernel and tile_size; give one or "
                "the other"
            )
        kernel = record.get("kernel")
        if kernel not in TILES_TOUCHED:
            raise InvalidWorkload(
                f"{label}: kernel {kernel!r} is not one of {sorted(TILES_TOUCHED)}"
            )
        b = _bounded(record.get("tile_size"), 1, MAX_TILE_SIZE, f"{label}: tile_size")
        if b != int(b):
            raise InvalidWorkload(
                f"{label}: tile_size {record.get('tile_size')!r} is not a whole number"
            )
        calls.append((str(kernel), int(b)))
    return calls


def _as_sized(record: Mapping[str, Any], kernel: str, b: int) -> dict[str, Any]:
    """A kernel call's record with the size, intensity, category and default memory it implies."""
    memory = TILES_TOUCHED[kernel] * b * b * BYTES_PER_ELEMENT / 1e6
    sized = {key: value for key, value in record.items() if key not in KERNEL_FIELDS}
    return {
        "memory": memory,
        **sized,
        "size": kernel_flops(kernel, b) / 1e9,
        "intensity": 1.0,
        "category": kernel,
    }


def _category(record: Mapping[str, Any], label: str) -> str:
    raw = record.get("category")
    if raw is None:
        return DEFAULT_CATEGORY
    if not isinstance(raw, str | int) or isinstance(raw, bool) or not str(raw).strip():
        raise InvalidWorkload(f"{label}: category must be a non-empty name, got {raw!r}")
    return str(raw).strip()


def _index_by_id(records: Sequence[Any], labels: list[str]) -> dict[str, int]:
    """Task id -> position; also rejects non-mappings and unknown fields."""
    index: dict[str, int] = {}
    for position, (record, label) in enumerate(zip(records, labels, strict=True)):
        if not isinstance(record, Mapping):
            raise InvalidWorkload(f"{label} is not a mapping of field names to values")
        unknown = sorted(str(key) for key in set(record) - _FIELDS)
        if unknown:
            raise InvalidWorkload(f"{label}: unknown field(s) {unknown}")
        raw = record.get("id")
        task_id = str(position) if raw is None else str(raw)
        if task_id in index:
            raise InvalidWorkload(
                f"{label}: id {task_id!r} is already used by {labels[index[task_id]]}"
            )
        index[task_id] = position
    return index


def _column(records: Sequence[Mapping[str, Any]], labels: list[str], name: str) -> np.ndarray:
    return np.array(
        [_number(record, name, label) for record, label in zip(records, labels, strict=True)],
        dtype=float,
    )


def _number(record: Mapping[str, Any], name: str, label: str) -> float:
    raw = record.get(name)
    if raw is None:
        raw = _DEFAULTS.get(name)
    if raw is None:
        raise InvalidWorkload(f"{label}: missing {name}")
    low, high = _BOUNDS[name]
    return _bounded(raw, low, high, f"{label}: {name}")


def _bounded(raw: Any, low: float, high: float, what: str) -> float:
    try:
        value = math.nan if isinstance(raw, bool) else float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise InvalidWorkload(f"{what} {raw!r} is not a finite number")
    if not low <= value <= high:
        raise InvalidWorkload(f"{what} {raw!r} lies outside [{low:g}, {high:g}]")
    return value


def _edges(
    records: Sequence[Mapping[str, Any]], labels: list[str], index: dict[str, int]
) -> tuple[list[tuple[int, int]], list[float]]:
    """(parent, child) pairs and the MB each carries, in record order."""
    pairs: list[tuple[int, int]] = []
    volumes: list[float] = []
    for child, (record, label) in enumerate(zip(records, labels, strict=True)):
        parent_ids = _id_list(record.get("parents"), f"{label}: parents")
        data = record.get("edge_data")
        if data is None:
            data = [0.0] * len(parent_ids)
        if isinstance(data, str) or not isinstance(data, Sequence) or len(data) != len(parent_ids):
            raise InvalidWorkload(f"{label}: edge_data must be a list with one value per parent")
        seen: set[int] = set()
        for parent_id, volume in zip(parent_ids, data, strict=True):
            parent = index.get(parent_id)
            if parent is None:
                raise InvalidWorkload(f"{label}: parent {parent_id!r} is not the id of any task")
            if parent == child:
                raise InvalidWorkload(f"{label}: task {parent_id!r} lists itself as a parent")
            if parent in seen:
                raise InvalidWorkload(f"{label}: parent {parent_id!r} is listed twice")
            seen.add(parent)
            pairs.append((parent, child))
            volumes.append(_bounded(volume, 0.0, math.inf, f"{label}: edge_data"))
    return pairs, volumes


def _id_list(raw: Any, what: str) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise InvalidWorkload(f"{what} must be a list of task ids, got {raw!r}")
    return [str(item) for item in raw]


def _find_cycle(pairs: list[tuple[int, int]], ids: list[str]) -> str | None:
    """A cycle as "'a' -> 'b' -> 'a'" (each task a parent of the next), or None if there is none."""
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for parent, child in pairs:
        sorter.add(child, parent)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        return " -> ".join(repr(ids[task]) for task in error.args[1])
    return None
