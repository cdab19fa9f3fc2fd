from api.web.run_form import read_form


def test_fields_make_the_runspec_and_empty_ones_take_its_defaults():
    form, spec = read_form({"workload.num_tasks": "500", "workload.load": "0.5"}, ["heft"])
    assert spec is not None and not form.errors
    assert (spec.workload.num_tasks, spec.workload.load, spec.workload.seed) == (500, 0.5, None)
    assert (spec.cluster.cpus, spec.cluster.gpus, spec.policies) == (8, 4, ["heft"])
    assert spec.rank_by is None


def test_each_error_goes_to_the_field_its_location_names():
    form, spec = read_form(
        {"workload.num_tasks": "many", "cluster.gpus": "-1", "priority": "10"}, ["heft", "nope"]
    )
    assert spec is None
    assert set(form.errors) == {"workload.num_tasks", "cluster.gpus", "priority", "policies"}
    assert form.values["workload.num_tasks"] == "many"  # shown again as typed


def test_an_error_about_a_group_of_fields_goes_to_the_group():
    form, _ = read_form({"cluster.cpus": "0", "cluster.gpus": "0"}, ["heft"])
    assert list(form.errors) == ["cluster"]


def test_a_json_spec_replaces_the_fields_and_collects_every_error_with_its_location():
    form, spec = read_form({"spec": '{"workload": {"kind": "layered_dag"}}'}, ["heft"])
    assert spec is None
    assert form.errors == {
        "spec": ["workload.layered_dag.num_tasks: Field required", "policies: Field required"]
    }
    form, spec = read_form({"spec": "{"}, [])
    assert spec is None and form.errors["spec"][0].startswith("spec: not JSON")


def test_a_submission_error_location_from_the_service_is_placed_too():
    form, _ = read_form({}, ["heft"])
    form.add_error(("body", "workload", "path"), "the API does not read files")
    assert form.errors == {"workload": ["the API does not read files"]}


def test_the_performance_model_field_goes_into_the_spec_and_its_errors_to_it():
    form, spec = read_form({"perf_model": "regression"}, ["dmda"])
    assert spec is not None and spec.perf_model == "regression"
    form, spec = read_form({"perf_model": "psychic"}, ["dmda"])
    assert spec is None and list(form.errors) == ["perf_model"]


def test_a_nul_or_a_lone_surrogate_in_the_spec_is_shown_at_the_field():
    text = '{"workload": {"kind": "stg", "text": "1\\u0000"}, "policies": ["heft", "\\udc00"]}'
    form, spec = read_form({"spec": text}, ["heft"])
    assert spec is None
    assert form.errors["spec"] == [
        "workload.text: String should not contain NUL (\\u0000): it cannot be stored",
        "policies.1: String should not contain a lone surrogate (\\ud800-\\udfff): it has no "
        "UTF-8 encoding",
    ]
