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


def test_a_running_runs_status_and_its_wait_line_name_the_phase_it_is_in():
    running = {**RUN, "status": "running", "progress": 0.4, "phase": "simulating heft (2/3)"}
    assert "phase          simulating heft (2/3)" in tables.run_fields(running).splitlines()
    assert tables.run_state_text(running) == "run r1 running: simulating heft (2/3)"
    assert tables.run_state_text({**running, "status": "succeeded"}) == "run r1 succeeded"


def test_a_runs_results_say_which_fitted_version_the_schedulers_decided_with():
    document = {"rank_by": "makespan", "results": [], "perf_model_version": 3}
    assert "decided with fitted kernel model v3" in tables.run_results(document)
    assert "kernel model" not in tables.run_results({**document, "perf_model_version": None})


def test_the_key_list_has_a_header_row_and_never_the_keys():
    keys = [
        {
            "name": "tests",
            "admin": True,
            "source": "environment",
            "created_at": None,
            "revoked_at": None,
        },
        {
            "name": "team-x",
            "admin": False,
            "source": "database",
            "created_at": "2026-12-06T04:00:00.123456Z",
            "revoked_at": "2026-12-06T05:00:00Z",
        },
    ]
    header, rule, *rows = tables.key_list(keys).splitlines()
    assert header.split() == ["name", "role", "source", "state", "created"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert rows[0].split() == ["tests", "admin", "environment", "active", "-"]
    revoked, created = "2026-12-06 05:00:00", "2026-12-06 04:00:00"
    assert rows[1].split() == [
        "team-x",
        "tenant",
        "database",
        "revoked",
        *revoked.split(),
        *created.split(),
    ]
