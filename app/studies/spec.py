"""The StudySpec: a base RunSpec, a grid over some of its fields, and a number of repetitions.

A grid key is a dotted path into the RunSpec (`workload.load`, `cluster.gpus`, `knowledge`); a
*cell* is one combination of grid values, in the order of `itertools.product` over the keys
sorted by name. Repetition r of every cell runs with seed `base.seed + r` (and, when the base pins a
workload seed, that seed + r), so within a repetition all cells and policies meet the same random
draws: comparisons are paired. Every (cell, repetition) becomes one ordinary run.

Validation happens here, once per cell: every cell's RunSpec is built and validated, so a bad key
or value is refused at submission, naming it (`validate_cells`); `plan_runs` gives the runs, which
a study's fan-out creates.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from app.errors import InvalidSpec
from app.runmemory import check_run_memory, planned_shape
from app.runspec import (
    MAX_DAG_TASKS,
    MAX_SEED,
    Integer,
    ProfileLookup,
    RunSpec,
    _Spec,
    checked_profile,
    kernel_profile,
)

#: A study's admission bounds, each a 422 that names it. Runs: the rows one request inserts
#: (bench/study_scale.py accepts 100,000 small runs in one request and completes them on two
#: worker processes). Repetitions: the runs of one cell, which the aggregation holds at once
#: (the paired tests need a cell's samples whole; everything else streams).
MAX_STUDY_RUNS = 100_000
MAX_REPETITIONS = 10_000
#: Cells: the statistics are one JSON document with every cell (cells x policies x metrics
#: summaries), and the study page draws every cell; 10,000 is what the 10,000-run cap allowed.
MAX_STUDY_CELLS = 10_000
#: Tasks x policies summed over the runs: the simulation work. 10**10 is about 3.3 CPU-hours at
#: the 1.2 us per task and policy bench/study.py measured (30,000 tasks x 3 policies in 111 ms).
#: A workload imported from a file counts as MAX_DAG_TASKS tasks: its size is known once parsed.
MAX_STUDY_PLACEMENTS = 10**10
#: Runs x policies: the result rows the study stores and its aggregation reads.
MAX_STUDY_RESULTS = 1_000_000
MAX_GRID_KEYS = 6
MAX_GRID_VALUES = 100
#: Set per run by the study itself, so not grid keys.
RESERVED_KEYS = frozenset({"seed", "priority"})


class StudySpec(_Spec):
    name: str = Field(min_length=1, max_length=200, description="What the study is for.")
    base: RunSpec = Field(description="The run every cell varies.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        max_length=MAX_GRID_KEYS,
        description="Dotted RunSpec paths (e.g. `workload.load`, `cluster.gpus`) to the values "
        "each takes; the cells are every combination.",
    )
    repetitions: Integer = Field(default=5, ge=1, le=MAX_REPETITIONS, description="Runs per cell.")
    priority: Integer = Field(default=5, ge=0, le=9, description="Every run's priority.")

    @field_validator("grid")
    @classmethod
    def _grid_shape(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if key in RESERVED_KEYS:
                raise ValueError(f"{key!r} is set by the study (seeds by repetition, priority)")
            if not 1 <= len(values) <= MAX_GRID_VALUES:
                raise ValueError(f"{key!r} needs 1..{MAX_GRID_VALUES} values")
        if _cell_count(grid) > MAX_STUDY_CELLS:
            raise ValueError(
                f"{_cell_count(grid)} grid cells, more than the limit of {MAX_STUDY_CELLS} "
                "(MAX_STUDY_CELLS)"
            )
        return grid

    @field_validator("repetitions")
    @classmethod
    def _run_count(cls, repetitions: int, info: ValidationInfo) -> int:
        """The runs are counted here, so that the 422 names `repetitions` (the grid was checked
        first: it is declared before)."""
        cells = _cell_count(info.data.get("grid", {}))
        if cells * repetitions > MAX_STUDY_RUNS:
            raise ValueError(
                f"{cells} grid cells x {repetitions} repetitions = {cells * repetitions} runs, "
                f"more than the limit of {MAX_STUDY_RUNS} (MAX_STUDY_RUNS)"
            )
        return repetitions

    @model_validator(mode="after")
    def _seeds(self) -> StudySpec:
        if self.base.seed + self.repetitions - 1 > MAX_SEED:
            raise ValueError("base.seed + repetitions exceeds the largest seed")
        return self

    @property
    def num_cells(self) -> int:
        return _cell_count(self.grid)

    @property
    def total_runs(self) -> int:
        return self.num_cells * self.repetitions

    def cells(self) -> list[dict[str, Any]]:
        """Each cell's grid values, {key: value}, in cell order: itertools.product over the grid
        keys sorted by name — not in the order given, which JSONB storage does not keep (a
        study's cells must number the same at submission and at aggregation)."""
        keys = sorted(self.grid)
        combos = itertools.product(*(self.grid[key] for key in keys))
        return [dict(zip(keys, combo, strict=True)) for combo in combos]


def _cell_count(grid: dict[str, list[Any]]) -> int:
    return math.prod(len(values) for values in grid.values())


@dataclass(frozen=True)
class PlannedRun:
    cell: int
    repetition: int
    spec: dict[str, Any]  # a valid RunSpec document (its cell was validated)


def plan_runs(
    study: StudySpec, profiles: ProfileLookup = kernel_profile, memory_budget_mb: int | None = None
) -> Iterator[PlannedRun]:
    """Every (cell, repetition) run, cell by cell, as an iterator: a caller can stream 100,000
    runs into the database without holding them. Every cell is validated first, before this
    returns: raises InvalidSpec naming the grid key when a cell is not a valid RunSpec, or (with
    a budget) when its run would need more than `memory_budget_mb` (app/runmemory.py), or when
    the study's runs add up to more than MAX_STUDY_PLACEMENTS or MAX_STUDY_RESULTS
    (`StudySize`). Each cell is validated once; its repetitions differ only in seeds (and
    priority), set on plain copies: a 10,000-run study is planned in milliseconds."""
    cells = validate_cells(study, profiles, memory_budget_mb)
    return (
        PlannedRun(index, repetition, _repetition(cell, repetition, study.priority))
        for index, cell in enumerate(cells)
        for repetition in range(study.repetitions)
    )


def validate_cells(
    study: StudySpec, profiles: ProfileLookup = kernel_profile, memory_budget_mb: int | None = None
) -> list[dict[str, Any]]:
    """Each cell's RunSpec document (seed and priority as the base's), in cell order, every one
    validated as `plan_runs` says. Its time grows with the cells, not the repetitions: what a
    study's submission does (its runs are created later, by its fan-out)."""
    base = study.base.model_dump(mode="json")
    size = StudySize()
    cells = []
    for values in study.cells():
        spec = _cell_spec(base, values, profiles)
        if memory_budget_mb is not None:
            _check_cell_memory(spec, values, memory_budget_mb)
        size.add(spec, study.repetitions)
        cells.append(spec.model_dump(mode="json"))
    return cells


@dataclass
class StudySize:
    """What a study's runs add up to, checked against the limits as its cells are planned."""

    placements: int = 0  # tasks x policies, summed over the runs
    results: int = 0  # runs x policies: the result rows

    def add(self, spec: RunSpec, repetitions: int) -> None:
        """Count a cell's `repetitions` runs of `spec`; InvalidSpec naming `repetitions` and the
        limit once the study passes one."""
        shape = planned_shape(spec)
        tasks = shape.tasks if shape is not None else MAX_DAG_TASKS
        policies = len(spec.policies)
        self.placements += repetitions * tasks * policies
        self.results += repetitions * policies
        for total, limit, name, what in (
            (self.placements, MAX_STUDY_PLACEMENTS, "MAX_STUDY_PLACEMENTS", "tasks x policies"),
            (self.results, MAX_STUDY_RESULTS, "MAX_STUDY_RESULTS", "runs x policies"),
        ):
            if total > limit:
                raise InvalidSpec(
                    f"the study's runs add up to more than {limit:,} {what} (the limit "
                    f"{name}); fewer repetitions, grid values, tasks or policies fit",
                    ("body", "repetitions"),
                )


def _cell_spec(base: dict[str, Any], values: dict[str, Any], profiles: ProfileLookup) -> RunSpec:
    """The cell's RunSpec, validated, with the kernel profile it names looked up in `profiles`."""
    document = copy.deepcopy(base)
    for key, value in values.items():
        _set_path(document, key, value)
    try:
        spec = RunSpec.model_validate(document)
        checked_profile(spec, profiles)
        return spec
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        named = next((k for k in values if _names(k, error["loc"])), next(iter(values), "base"))
        raise InvalidSpec(
            f"grid {named!r} = {values.get(named)!r}: {where}: {error['msg']}",
            ("body", "grid", named),
        ) from None


def _check_cell_memory(spec: RunSpec, values: dict[str, Any], budget_mb: int) -> None:
    """The same memory check as a lone run's, blamed on the cell's grid values."""
    shape = planned_shape(spec)
    if shape is None:  # an imported file's tasks are counted once parsed: the worker's cap holds
        return
    try:
        check_run_memory(spec, shape, budget_mb)
    except InvalidSpec as exc:
        named = next(iter(values), None)
        where = ("body", "grid", named) if named is not None else exc.location
        raise InvalidSpec(f"grid cell {values}: {exc}", where) from None


def _names(key: str, location: tuple[int | str, ...]) -> bool:
    """Whether an error at `location` is about grid `key`: the key's parts appear in order in
    it (pydantic adds the workload kind to the location: workload.synthetic.load)."""
    parts = iter(map(str, location))
    return all(part in parts for part in key.split("."))


def _repetition(cell: dict[str, Any], repetition: int, priority: int) -> dict[str, Any]:
    """The cell's document with repetition r's seeds: run seed + r, and a pinned workload seed
    + r (seeds stay within bounds: StudySpec checks base.seed + repetitions)."""
    document = {**cell, "seed": cell["seed"] + repetition, "priority": priority}
    workload_seed = cell["workload"].get("seed")
    if workload_seed is not None:
        document["workload"] = {**cell["workload"], "seed": workload_seed + repetition}
    return document


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """document[a][b]... = value for path "a.b...", creating objects where the base has none
    (e.g. `cluster.gpus` when the base omits `cluster`)."""
    *parents, last = path.split(".")
    node = document
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise InvalidSpec(f"grid key {path!r}: {part!r} is not an object", ("body", "grid"))
        node = child
    node[last] = value
