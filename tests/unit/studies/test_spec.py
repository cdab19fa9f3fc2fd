import pytest
from pydantic import ValidationError

from app.errors import InvalidSpec
from app.runspec import RunSpec
from app.studies import spec as study_spec
from app.studies.spec import MAX_STUDY_RUNS, StudySpec, plan_runs, validate_cells

BASE = {"workload": {"kind": "synthetic", "num_tasks": 50}, "policies": ["heft"], "seed": 10}


def study(**fields) -> StudySpec:
    return StudySpec.model_validate({"name": "s", "base": BASE, **fields})


def test_cells_are_every_combination_over_the_keys_sorted_by_name():
    spec = study(grid={"workload.load": [0.5, 0.9], "cluster.gpus": [1, 2, 4]}, repetitions=2)
    assert spec.num_cells == 6 and spec.total_runs == 12
    assert spec.cells()[1] == {"cluster.gpus": 1, "workload.load": 0.9}
    assert spec.cells()[5] == {"cluster.gpus": 4, "workload.load": 0.9}


def test_cells_number_the_same_whatever_order_the_stored_grid_comes_back_in():
    # JSONB does not keep key order: the spec read back at aggregation has the grid reordered.
    given = study(grid={"workload.load": [0.5, 0.9], "cluster.gpus": [1, 2]})
    reordered = study(grid={"cluster.gpus": [1, 2], "workload.load": [0.5, 0.9]})
    assert given.cells() == reordered.cells()
    assert [p.spec for p in plan_runs(given)] == [p.spec for p in plan_runs(reordered)]


def test_repetition_r_of_every_cell_uses_seed_base_plus_r_and_the_studys_priority():
    spec = study(grid={"cluster.gpus": [1, 2]}, repetitions=3, priority=8)
    planned = list(plan_runs(spec))
    assert [(p.cell, p.repetition, p.spec["seed"]) for p in planned] == [
        (0, 0, 10), (0, 1, 11), (0, 2, 12), (1, 0, 10), (1, 1, 11), (1, 2, 12),
    ]  # fmt: skip
    assert {p.spec["priority"] for p in planned} == {8}
    assert planned[4].spec["cluster"]["gpus"] == 2  # the base has no cluster: one is made
    assert all(RunSpec.model_validate(p.spec) for p in planned)


def test_a_pinned_workload_seed_moves_with_the_repetition():
    spec = StudySpec.model_validate(
        {
            "name": "s",
            "base": {**BASE, "workload": {**BASE["workload"], "seed": 7}},
            "repetitions": 2,
        }
    )
    assert [p.spec["workload"]["seed"] for p in plan_runs(spec)] == [7, 8]


@pytest.mark.parametrize(
    ("grid", "key"),
    [
        ({"workload.laod": [0.5]}, "workload.laod"),
        ({"workload.load": [0.5, 0]}, "workload.load"),
        ({"knowledge": ["psychic"]}, "knowledge"),
        ({"perf_model": ["history", "oracle"]}, "perf_model"),
        ({"cluster.gpus": [1], "cluster.cpus": ["many"]}, "cluster.cpus"),
    ],
)
def test_a_cell_that_is_no_valid_runspec_names_its_grid_key(grid, key):
    with pytest.raises(InvalidSpec) as info:
        list(plan_runs(study(grid=grid)))
    assert info.value.location == ("body", "grid", key)


def test_seed_and_priority_are_not_grid_keys_and_the_run_count_is_bounded():
    with pytest.raises(ValidationError, match="set by the study"):
        study(grid={"seed": [1, 2]})
    with pytest.raises(ValidationError, match=f"limit of {MAX_STUDY_RUNS}") as info:
        study(grid={"cluster.gpus": list(range(1, 101))}, repetitions=MAX_STUDY_RUNS // 100 + 1)
    assert info.value.errors()[0]["loc"] == ("repetitions",)
    with pytest.raises(ValidationError, match="MAX_STUDY_CELLS") as info:
        hundred = list(range(1, 101))
        study(grid={"cluster.gpus": hundred, "cluster.cpus": hundred, "workload.load": [0.5, 0.9]})
    assert info.value.errors()[0]["loc"] == ("grid",)
    with pytest.raises(ValidationError):
        study(grid={"cluster.gpus": []})


def test_a_study_compares_performance_models_as_a_grid_over_perf_model():
    models = ["history", "regression", "nl_regression", "learned", "exact"]
    planned = list(plan_runs(study(grid={"perf_model": models}, repetitions=1)))
    assert [p.spec["perf_model"] for p in planned] == models
    base = {**BASE, "perf_model": "exact"}
    spec = StudySpec.model_validate({"name": "s", "base": base, "repetitions": 1})
    assert [p.spec["perf_model"] for p in plan_runs(spec)] == ["exact"]


def test_a_study_simulating_more_than_the_limit_of_tasks_x_policies_is_refused_naming_it():
    base = {
        **BASE,
        "workload": {"kind": "synthetic", "num_tasks": 1_000_000},
        "policies": ["heft", "greedy"],
    }
    spec = StudySpec.model_validate({"name": "s", "base": base, "repetitions": 6_000})
    with pytest.raises(InvalidSpec, match="MAX_STUDY_PLACEMENTS") as info:
        plan_runs(spec)  # refused before a run is planned
    assert info.value.location == ("body", "repetitions")
    assert len(list(plan_runs(spec.model_copy(update={"repetitions": 4_000})))) == 4_000


def test_every_cell_is_validated_before_a_run_is_planned():
    """The fan-out streams the runs into its COPYs: a bad last cell is refused before any run is
    planned."""
    with pytest.raises(InvalidSpec) as info:
        plan_runs(study(grid={"workload.load": [0.5, 0.7, -1]}, repetitions=3))
    assert info.value.location == ("body", "grid", "workload.load")


def test_a_submission_validates_each_cell_once_whatever_the_repetitions(monkeypatch):
    """What the API does (validate_cells) grows with the cells, not the runs; its documents are
    the cells' runs at repetition 0 but for their seed and priority."""
    built = []
    cell_spec = study_spec._cell_spec
    monkeypatch.setattr(
        study_spec, "_cell_spec", lambda *args: built.append(args[1]) or cell_spec(*args)
    )
    spec = study(grid={"cluster.gpus": [1, 2]}, repetitions=10_000, priority=8)
    cells = validate_cells(spec)
    assert built == spec.cells() and len(cells) == 2
    first = next(plan_runs(spec))
    assert first.spec == {**cells[0], "priority": 8}
