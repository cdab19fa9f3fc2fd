"""app/runmemory.py: the estimate is above what a run really peaks at, the dependency bound
holds, and a spec over the budget is refused at the field that sets its size."""

from __future__ import annotations

import pytest

from app.errors import InvalidSpec
from app.runmemory import check_run_memory, planned_shape
from app.runspec import RunSpec, build_problem
from bench.run_memory import measure


def shape_of(document: dict):
    shape = planned_shape(RunSpec.model_validate(document))
    assert shape is not None
    return shape


def test_the_estimate_is_above_a_measured_run_and_not_far_above() -> None:
    # About 1 s of simulation (9 s with the process's start): the n x d tables of 40 devices
    # dominate (137 MB measured), not the fixed part.
    document = {
        "workload": {"kind": "synthetic", "num_tasks": 100_000},
        "cluster": {"cpus": 32, "gpus": 8},
        "policies": ["greedy"],
    }
    estimate = shape_of(document).estimate_mb
    peak = measure(document)
    assert max(peak.resident_mb, peak.address_space_mb) < estimate < 2.5 * peak.resident_mb, (
        peak,
        estimate,
    )


@pytest.mark.parametrize(
    "workload",
    [
        {"kind": "layered_dag", "num_tasks": 3000},
        {"kind": "layered_dag", "num_tasks": 3000, "density": 1.0, "jump": 3, "regularity": 0.0},
        {"kind": "layered_dag", "num_tasks": 3000, "width": 0.8, "regularity": 1.0},
        {"kind": "synthetic", "num_tasks": 3000, "dependency_probability": 1.0, "max_parents": 16},
        {"kind": "tiled", "factorization": "cholesky", "tiles": 20, "tile_size": 128},
        {"kind": "tiled", "factorization": "cholesky", "tiles": 12, "tile_size": 256},
    ],
)
def test_the_dependency_bound_holds_for_every_generator(workload: dict) -> None:
    document = {"workload": workload, "policies": ["heft"]}
    built = build_problem(RunSpec.model_validate(document)).workload
    shape = shape_of(document)
    assert shape.tasks == built.num_tasks
    assert built.parent_idx.size <= shape.edges


@pytest.mark.parametrize(
    ("workload", "field"),
    [
        ({"kind": "synthetic", "num_tasks": 1_000_000}, "num_tasks"),
        ({"kind": "layered_dag", "num_tasks": 200_000}, "num_tasks"),
        ({"kind": "tiled", "factorization": "cholesky", "tiles": 100, "tile_size": 64}, "tiles"),
    ],
)
def test_a_run_over_the_budget_is_refused_at_the_field_that_sets_its_size(workload, field) -> None:
    spec = RunSpec.model_validate({"workload": workload, "policies": ["heft", "oracle"]})
    shape = planned_shape(spec)
    assert shape is not None
    check_run_memory(spec, shape, int(shape.estimate_mb) + 1)  # within the budget: accepted
    with pytest.raises(InvalidSpec) as refused:
        check_run_memory(spec, shape, int(shape.estimate_mb) - 1)
    assert refused.value.location == ("body", "workload", field)
    assert f"{shape.tasks:,} tasks" in str(refused.value)
