import pytest
from pydantic import ValidationError

from app.errors import InvalidSpec
from app.runspec import MAX_TASKS, RunSpec, build_problem
from tests.conftest import EXAMPLE_SPEC

EXAMPLE = EXAMPLE_SPEC


def error_locations(body: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        RunSpec.model_validate(body)
    return [error["loc"] for error in info.value.errors()]


def test_the_readme_example_is_valid_and_fills_defaults():
    spec = RunSpec.model_validate(EXAMPLE)
    assert spec.seed == 0 and spec.workload_seed == 7
    assert spec.workload.arrival_rate is None and spec.workload.offered_load == 0.85
    assert spec.knowledge == "estimated" and spec.rank_by is None
    assert spec.cluster is not None and spec.cluster.noise_sigma == 0.1


@pytest.mark.parametrize(
    ("patch", "location"),
    [
        (
            {"workload": {"kind": "synthetic", "num_tasks": 0}},
            ("workload", "synthetic", "num_tasks"),
        ),
        (
            {"workload": {"kind": "synthetic", "num_tasks": MAX_TASKS + 1}},
            ("workload", "synthetic", "num_tasks"),
        ),
        ({"workload": {"kind": "nope", "num_tasks": 3}}, ("workload",)),
        ({"policies": ["greedy", "teleport"]}, ("policies", 1)),
        ({"policies": []}, ("policies",)),
        ({"priority": 10}, ("priority",)),
        ({"cluster": {"cpus": -1}}, ("cluster", "cpus")),
        ({"surprise": 1}, ("surprise",)),
    ],
)
def test_bad_input_names_the_field(patch, location):
    assert location in error_locations({**EXAMPLE, **patch})


def test_duplicate_policies_and_empty_clusters_are_rejected():
    assert ("policies",) in error_locations({**EXAMPLE, "policies": ["greedy", "greedy"]})
    assert ("cluster",) in error_locations({**EXAMPLE, "cluster": {"cpus": 0, "gpus": 0}})


def test_build_is_deterministic_and_uses_the_workload_seed():
    a = build_problem(RunSpec.model_validate(EXAMPLE))
    b = build_problem(RunSpec.model_validate({**EXAMPLE, "seed": 99}))  # run seed: not used here
    assert (a.workload.size == b.workload.size).all()
    assert a.num_devices == 12


def test_a_workload_that_fits_no_device_is_an_invalid_spec():
    body = {**EXAMPLE, "workload": {"kind": "synthetic", "num_tasks": 5, "min_size": 5000.0}}
    # Tasks of >= 5000 GFLOP carry ~24 GB of data: more than a GPU holds, so with no CPU cores...
    with pytest.raises(InvalidSpec, match="fit on no device"):
        build_problem(RunSpec.model_validate({**body, "cluster": {"cpus": 0, "gpus": 2}}))
