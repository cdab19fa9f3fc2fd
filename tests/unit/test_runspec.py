import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from app.cli.main import main
from app.errors import InvalidSpec
from app.runspec import (
    MAX_TASKS,
    RunSpec,
    build_problem,
    build_scenario,
    checked_profile,
    kernel_profile,
)
from app.services.simulation import simulate_spec
from app.sim import costs
from app.sim.profile import Profile
from tests.conftest import EXAMPLE_SPEC

EXAMPLE = EXAMPLE_SPEC


def error_locations(body: dict) -> list[tuple]:
    """Where validation refuses the body: the RunSpec's own rules, then the named kernel
    profile's (checked_profile; the shipped profiles, as `hms simulate` knows them)."""
    with pytest.raises(ValidationError) as info:
        checked_profile(RunSpec.model_validate(body))
    return [error["loc"] for error in info.value.errors()]


def test_the_readme_example_is_valid_and_fills_defaults():
    spec = RunSpec.model_validate(EXAMPLE)
    assert spec.seed == 0 and spec.workload_seed == 7
    assert spec.workload.arrival_rate is None and spec.workload.offered_load == 0.85
    assert spec.knowledge == "estimated" and spec.rank_by is None
    assert spec.cluster is not None and spec.cluster.profile is None
    assert spec.kernel_profile_name == "v100-skylake-mcsweeney2020"  # the default measurement


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
    # Kernel calls on tiles of 32..1024 doubles touch 0.008..25 MB: on GPUs of 1 MB with no
    # CPU cores, the larger ones fit nowhere.
    cluster = {"cpus": 0, "gpus": 2, "gpu": {"memory": 1.0}}
    with pytest.raises(InvalidSpec, match="fit on no device"):
        build_problem(RunSpec.model_validate({**EXAMPLE, "cluster": cluster}))


TILED = {"kind": "tiled", "factorization": "cholesky", "tiles": 6, "tile_size": 512}
#: The shipped measurement of this machine class: every kernel of the three factorizations, on
#: cores only (the default V100 profile times Cholesky's kernels only).
CORES_MEASURED = {"cpus": 2, "gpus": 0, "profile": "epyc-2c-vm-2026-12"}


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
    body = {**EXAMPLE, "cluster": CORES_MEASURED}
    assert ("workload", "tiled") in error_locations(
        {**body, "workload": {**TILED, "factorization": "lu", "tiles": 84}}
    )
    RunSpec.model_validate({**body, "workload": {**TILED, "factorization": "lu", "tiles": 83}})


@pytest.mark.parametrize("factorization", ["cholesky", "lu", "qr"])
def test_a_tiled_factorization_simulates_as_a_static_dag(factorization):
    body = {
        **EXAMPLE,
        "workload": {**TILED, "factorization": factorization},
        "cluster": CORES_MEASURED,
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


MEASURED = {
    "workload": {"kind": "tiled", "factorization": "cholesky", "tiles": 8, "tile_size": 512},
    "cluster": {"cpus": 8, "gpus": 2, "profile": "v100-skylake-mcsweeney2020"},
    "policies": ["greedy", "eft", "heft", "oracle"],
}


def measured(**workload) -> dict:
    return {**MEASURED, "workload": {**MEASURED["workload"], **workload}}


def test_a_tiled_run_on_a_kernel_profile_simulates_and_the_oracle_is_best():
    spec = RunSpec.model_validate(MEASURED)
    simulation = simulate_spec(spec)
    makespans = {outcome.policy: outcome.metrics.makespan for outcome in simulation.outcomes}
    assert set(makespans) == {"greedy", "eft", "heft", "oracle"}
    assert all(makespans["oracle"] <= value for value in makespans.values())
    again = simulate_spec(RunSpec.model_validate(MEASURED))
    assert makespans == {o.policy: o.metrics.makespan for o in again.outcomes}


def test_kernel_profile_truth_is_bit_identical_per_seed_and_differs_across_seeds():
    first = build_scenario(RunSpec.model_validate(MEASURED)).truth.exec_time
    again = build_scenario(RunSpec.model_validate(MEASURED)).truth.exec_time
    other = build_scenario(RunSpec.model_validate({**MEASURED, "seed": 1})).truth.exec_time
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)


def test_the_published_curve_reaches_the_truth_a_gpu_is_slower_than_a_core_for_gemm_at_32():
    spec = RunSpec.model_validate(measured(tiles=4, tile_size=32))
    scenario = build_scenario(spec)
    truth, workload = scenario.truth, scenario.truth.workload
    profile = kernel_profile("v100-skylake-mcsweeney2020")
    gemm = workload.category == workload.category_names.index("gemm")
    kernel_time = truth.exec_time - costs.transfer_time(workload, truth.cluster)
    on_core = kernel_time[gemm][:, truth.cluster.cpus[0]]
    on_gpu = kernel_time[gemm][:, truth.cluster.gpus[0]]
    # The CPU side of this profile has no spread: each draw is the published mean.
    assert np.all(on_core == profile.time("gemm", "cpu", 32))
    assert np.all(np.abs(on_gpu - 29.4e-6) < 5 * 1.1e-6)  # 29.4 +- 1.1 us, the paper's V100
    assert np.all(on_gpu > on_core)  # acceleration 0.67: the GPU loses at tile 32
    # the nominal (datasheet) view believes the opposite: it is not what the truth says
    estimate = scenario.estimate.exec_time[gemm]
    speed = scenario.estimate.cluster.speed
    assert np.allclose(estimate[:, truth.cluster.cpus[0]], workload.size[gemm] / speed[0])


def test_a_tile_size_between_measured_ones_is_interpolated_log_log():
    scenario = build_scenario(RunSpec.model_validate(measured(tiles=3, tile_size=48)))
    workload, truth = scenario.truth.workload, scenario.truth
    potrf = workload.category == workload.category_names.index("potrf")
    profile = kernel_profile("v100-skylake-mcsweeney2020")
    low, high = profile.time("potrf", "cpu", 32), profile.time("potrf", "cpu", 64)
    expected = np.exp(np.log(low) + np.log(48 / 32) / np.log(2) * (np.log(high) - np.log(low)))
    assert np.allclose(truth.exec_time[potrf][:, truth.cluster.cpus], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (measured(tile_size=16), ("workload", "tile_size")),
        (measured(tile_size=2048), ("workload", "tile_size")),
        (measured(factorization="lu"), ("cluster", "profile")),
        (measured(factorization="qr"), ("cluster", "profile")),
        (
            {**MEASURED, "workload": {"kind": "explicit", "compute": [[1.0, 2.0]]}},
            ("cluster", "profile"),
        ),
        ({**MEASURED, "cluster": {"profile": "no-such-profile"}}, ("cluster", "profile")),
        (  # a CPU-only measurement cannot time a synthetic workload's tasks on a GPU
            {
                **MEASURED,
                "workload": {"kind": "synthetic", "num_tasks": 10},
                "cluster": {"gpus": 1, "profile": "epyc-2c-vm-2026-12"},
            },
            ("cluster", "profile"),
        ),
        (  # the invented truth's knobs are gone: the spread is what the profile measured
            {**MEASURED, "cluster": {**MEASURED["cluster"], "noise_sigma": 0.2}},
            ("cluster", "noise_sigma"),
        ),
        (
            {**MEASURED, "cluster": {**MEASURED["cluster"], "hardware_seed": 1}},
            ("cluster", "hardware_seed"),
        ),
    ],
)
def test_what_a_kernel_profile_cannot_time_is_refused_at_its_field(body, location):
    assert error_locations(body) == [location]


def test_a_spec_with_a_kernel_profile_survives_the_round_trip_a_worker_makes():
    """The API stores `model_dump(mode="json")`, every default written out, and the worker
    validates that document again: what was accepted must validate and build the same."""
    accepted = RunSpec.model_validate(MEASURED)
    stored = json.loads(json.dumps(accepted.model_dump(mode="json")))
    assert stored["priority"] == 5  # a default, now given explicitly
    again = RunSpec.model_validate(stored)
    assert again == accepted
    first, second = build_scenario(accepted).truth, build_scenario(again).truth
    assert np.array_equal(first.exec_time, second.exec_time)


def test_a_name_not_shipped_is_looked_up_where_the_tenant_is_known():
    """A tenant's upload: the RunSpec alone cannot know it, so its own validation lets the name
    through, and the lookup the services pass (the tenant's profiles) decides."""
    uploaded = replace(kernel_profile("epyc-2c-vm-2026-12"), name="my-laptop")
    body = {**MEASURED, "cluster": {"cpus": 2, "gpus": 0, "profile": "my-laptop"}}
    spec = RunSpec.model_validate(body)

    def tenant_profiles(name: str) -> Profile:
        if name == "my-laptop":
            return uploaded
        return kernel_profile(name)

    assert checked_profile(spec, tenant_profiles) is uploaded
    truth = build_scenario(spec, tenant_profiles).truth
    assert truth.num_devices == 2 and np.all(np.isfinite(truth.exec_time))
    with pytest.raises(InvalidSpec, match="my-laptop"):
        build_scenario(spec)  # the shipped profiles alone do not have it
    too_big = RunSpec.model_validate(
        {**body, "workload": {**MEASURED["workload"], "tile_size": 1024}}
    )
    with pytest.raises(ValidationError) as info:
        checked_profile(too_big, tenant_profiles)  # its measured range ends at 512
    assert [error["loc"] for error in info.value.errors()] == [("workload", "tile_size")]


def test_a_cpu_only_cluster_needs_only_the_cpu_timings():
    cluster = {"cpus": 4, "gpus": 0, "profile": MEASURED["cluster"]["profile"]}
    body = {**MEASURED, "cluster": cluster}
    truth = build_scenario(RunSpec.model_validate(body)).truth
    assert truth.num_devices == 4 and np.all(np.isfinite(truth.exec_time))


def test_a_hardware_profile_dict_still_calibrates():
    body = {
        **MEASURED,
        "cluster": {
            "profile": {
                "profiled_sizes": [256, 512, 1024],
                "cpu_times": [0.002, 0.015, 0.12],
                "gpu_times": [0.000134, 0.000368, 0.00225],
            }
        },
    }
    spec = RunSpec.model_validate(body)
    assert spec.cluster is not None and spec.cluster.kernel_profile_name is None
    assert build_problem(spec).cluster.speed[0] != 40.0


def test_with_every_core_busy_the_truth_reads_the_all_busy_timings():
    body = {
        **MEASURED,
        "workload": {**MEASURED["workload"], "tile_size": 256},
        "cluster": {**CORES_MEASURED, "contention": "all_busy"},
    }
    spec = RunSpec.model_validate(body)
    seen, measured = checked_profile(spec), kernel_profile("epyc-2c-vm-2026-12")
    for kernel in ("gemm", "potrf", "syrk", "trsm"):
        busy = measured.curve(kernel, "cpu", "all_busy")
        assert np.array_equal(seen.curve(kernel, "cpu").mean_s, busy.mean_s)
    alone = build_scenario(RunSpec.model_validate({**body, "cluster": CORES_MEASURED})).truth
    busy = build_scenario(spec).truth
    assert not np.array_equal(alone.exec_time, busy.exec_time)


@pytest.mark.parametrize(
    ("body", "location"),
    [  # the published V100 profile has no all-busy timings; an explicit table has no profile
        ({**MEASURED, "cluster": {"contention": "all_busy"}}, ("cluster", "profile")),
        (
            {
                "workload": {"kind": "explicit", "compute": [[1.0]]},
                "cluster": {"cpus": 1, "gpus": 0, "contention": "all_busy"},
                "policies": ["heft"],
            },
            ("cluster", "contention"),
        ),
    ],
)
def test_every_core_busy_needs_a_profile_that_measured_it(body, location):
    assert error_locations(body) == [location]


def test_inline_kernel_calls_take_the_profiles_times_and_other_inline_tasks_cannot_name_one():
    calls = [
        {"id": "f", "kernel": "potrf", "tile_size": 512},
        {"id": "t", "kernel": "trsm", "tile_size": 512, "parents": ["f"]},
    ]
    body = {
        "workload": {"kind": "inline", "tasks": calls},
        "cluster": {"cpus": 2, "gpus": 1},
        "policies": ["heft", "oracle"],
    }
    spec = RunSpec.model_validate(body)
    assert spec.kernel_profile_name == "v100-skylake-mcsweeney2020"  # the default
    truth = build_problem(spec)
    profile = kernel_profile("v100-skylake-mcsweeney2020")
    on_core = truth.exec_time[:, truth.cluster.cpus[0]]  # the CPU side has no spread: the mean
    assert list(on_core) == [profile.time("potrf", "cpu", 512), profile.time("trsm", "cpu", 512)]
    sized = {**body["workload"], "tasks": [{"id": "a", "size": 3.0}]}
    named = {**body, "workload": sized, "cluster": {"profile": "v100-skylake-mcsweeney2020"}}
    assert error_locations(named) == [("cluster", "profile")]
    # A kernel the profile did not time: refused when the workload is built, at the profile.
    getrf = {
        **body,
        "workload": {"kind": "inline", "tasks": [{"kernel": "getrf", "tile_size": 64}]},
    }
    with pytest.raises(InvalidSpec, match="getrf"):
        build_problem(RunSpec.model_validate(getrf))


TILED_RUN = {
    "workload": {"kind": "tiled", "factorization": "cholesky", "tiles": 4, "tile_size": 256},
    "cluster": {"cpus": 2, "gpus": 1},
    "policies": ["heft"],
}


def test_the_perf_model_defaults_to_history_and_an_unknown_one_names_the_field():
    assert RunSpec.model_validate(TILED_RUN).perf_model == "history"
    assert error_locations({**TILED_RUN, "perf_model": "oracle"}) == [("perf_model",)]
    assert error_locations({**TILED_RUN, "perf_model_version": 0}) == [("perf_model_version",)]
    assert error_locations({**TILED_RUN, "perf_model_version": "1"}) == [("perf_model_version",)]
    pinned_exact = {**TILED_RUN, "perf_model": "exact", "perf_model_version": 1}
    assert error_locations(pinned_exact) == [("perf_model_version",)]


def test_the_perf_model_is_accepted_but_unused_where_it_does_not_apply():
    # No runtime scheduler in the spec: no model, whatever perf_model says.
    regression = {**TILED_RUN, "perf_model": "regression"}
    assert RunSpec.model_validate(regression).kernel_model_name is None
    with_dmda = {**regression, "policies": ["heft", "dmda"]}
    assert RunSpec.model_validate(with_dmda).kernel_model_name == "regression"
    clairvoyant = {**TILED_RUN, "perf_model": "regression", "knowledge": "clairvoyant"}
    assert RunSpec.model_validate(clairvoyant).kernel_model_name is None
    explicit = {"workload": {"kind": "explicit", "compute": [[1.0, 2.0]]}, "policies": ["heft"]}
    assert RunSpec.model_validate({**explicit, "perf_model": "learned"}).kernel_model_name is None


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"cluster": {"cpus": 2, "gpus": 1, "gpu": {"speed": float("inf")}}}, ("cluster", "gpu")),
        (
            {"workload": {"kind": "explicit", "compute": [[1.0], [float("nan")]]}},
            ("workload", "explicit", "compute", 1, 0),
        ),
    ],
)
def test_a_spec_file_with_nan_or_infinity_is_refused_naming_the_field(change, location):
    """`hms simulate --spec` reads files with Python's json module, which accepts them."""
    spec = json.loads(json.dumps({**EXAMPLE_SPEC, **change}))
    with pytest.raises(ValidationError) as refused:
        RunSpec.model_validate(spec)
    (error,) = refused.value.errors()
    assert error["type"] == "finite_number" and error["loc"][: len(location)] == location
