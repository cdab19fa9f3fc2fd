import json

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from app.cli.main import main
from app.errors import InvalidSpec
from app.runspec import MAX_TASKS, RunSpec, build_problem
from app.services.simulation import simulate_spec
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


TILED = {"kind": "tiled", "factorization": "cholesky", "tiles": 6, "tile_size": 512}


@pytest.mark.parametrize(
    ("workload", "field"),
    [
        ({**TILED, "tiles": 0}, "tiles"),
        ({**TILED, "tile_size": 0}, "tile_size"),
        ({**TILED, "tile_size": "512"}, "tile_size"),
        ({**TILED, "factorization": "svd"}, "factorization"),
        ({**TILED, "pivoting": True}, "pivoting"),
    ],
)
def test_a_bad_tiled_workload_names_its_field(workload, field):
    assert ("workload", "tiled", field) in error_locations({**EXAMPLE, "workload": workload})


def test_a_tiled_dag_over_the_task_limit_is_refused():
    # LU on 84 x 84 tiles: 84 * 85 * 169 / 6 = 201,110 tasks > MAX_DAG_TASKS; 83 x 83 fits.
    assert ("workload", "tiled") in error_locations(
        {**EXAMPLE, "workload": {**TILED, "factorization": "lu", "tiles": 84}}
    )
    RunSpec.model_validate({**EXAMPLE, "workload": {**TILED, "factorization": "lu", "tiles": 83}})


@pytest.mark.parametrize("factorization", ["cholesky", "lu", "qr"])
def test_a_tiled_factorization_simulates_as_a_static_dag(factorization):
    body = {
        **EXAMPLE,
        "workload": {**TILED, "factorization": factorization},
        "policies": ["heft", "greedy", "oracle"],
    }
    simulation = simulate_spec(RunSpec.model_validate(body))
    workload = simulation.problem.workload
    assert workload.num_tasks == {"cholesky": 56, "lu": 91, "qr": 91}[factorization]
    assert simulation.rank_by == "makespan"  # every task arrives at 0
    assert {outcome.policy for outcome in simulation.outcomes} == {"heft", "greedy", "oracle"}
    assert all(outcome.metrics.makespan > 0 for outcome in simulation.outcomes)


def test_hms_simulate_runs_a_tiled_spec(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**EXAMPLE, "workload": TILED, "policies": ["heft", "oracle"]}))
    result = CliRunner().invoke(main, ["simulate", "--spec", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert {row["policy"] for row in rows} == {"heft", "oracle"}
    assert all(row["rank_by"] == "makespan" for row in rows)
