"""What `hms status` and `hms results` say of the kernel model a run decided with."""

from app.cli import tables

RUN = {
    "id": "r1",
    "status": "succeeded",
    "progress": 1.0,
    "attempts": 1,
    "error": None,
    "priority": 5,
    "tenant": "team-a",
    "spec": {"policies": ["dmda"], "perf_model": "regression"},
    "created_at": None,
    "started_at": None,
    "finished_at": None,
    "model_version": None,
    "perf_model_version": 3,
}


def test_a_runs_fields_name_its_fitted_kernel_model_and_version():
    assert "kernel model   regression v3" in tables.run_fields(RUN).splitlines()
    unfitted = tables.run_fields({**RUN, "perf_model_version": None}).splitlines()
    assert "kernel model" in unfitted and not any("regression" in line for line in unfitted)


def test_a_runs_results_say_which_fitted_version_the_schedulers_decided_with():
    document = {"rank_by": "makespan", "results": [], "perf_model_version": 3}
    assert "decided with fitted kernel model v3" in tables.run_results(document)
    assert "kernel model" not in tables.run_results({**document, "perf_model_version": None})
