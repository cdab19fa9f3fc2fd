"""The dashboard's run form (api/web/run_form.py): errors in the form's words, and the address a
failed submit redirects to."""

from urllib.parse import parse_qs, urlsplit

import pytest

from api.web.run_form import (
    DEFAULTS,
    FIELDS,
    MAX_ADDRESS,
    Kind,
    entered_in,
    form_address,
    read_form,
)

NUMBER_FIELDS = [name for name, spec in FIELDS.items() if spec.kind in (Kind.WHOLE, Kind.NUMBER)]


def test_a_text_in_the_cpu_cores_field_is_said_in_the_forms_words():
    form, spec = read_form({"cluster.cpus": "eight"}, ["heft"])
    assert spec is None
    assert form.errors == {"cluster.cpus": ["CPU cores must be a whole number"]}


@pytest.mark.parametrize("name", NUMBER_FIELDS)
def test_every_number_field_names_itself_and_what_it_takes(name):
    spec = FIELDS[name]
    form, _ = read_form({name: "many"}, ["heft"])
    expected = f"{spec.label} must be {spec.kind.value}"
    assert form.errors == {name: [expected[0].upper() + expected[1:]]}
    assert "Input should" not in expected


@pytest.mark.parametrize(
    ("fields", "place", "message"),
    [
        ({"cluster.cpus": "2.5"}, "cluster.cpus", "CPU cores must be a whole number"),
        ({"workload.load": "fast"}, "workload.load", "Offered load must be a number"),
        ({"workload.load": "0"}, "workload.load", "Offered load must be more than 0"),
        ({"workload.load": "nan"}, "workload.load", "Offered load must be a finite number"),
        ({"cluster.gpus": "-1"}, "cluster.gpus", "GPUs must be at least 0"),
        ({"priority": "12"}, "priority", "Priority must be at most 9"),
        ({"workload.seed": "1e99"}, "workload.seed", "Workload seed is too large a number"),
        (
            {"workload.seed": "1\x00"},
            "workload.seed",
            "Workload seed must not contain a NUL character",
        ),
        ({"knowledge": "psychic"}, "knowledge", "Knowledge must be 'estimated' or 'clairvoyant'"),
        ({"workload.kind": "tree"}, "workload.kind", "Workload kind must be one of 'synthetic'"),
        ({"cluster.cpus": "0", "cluster.gpus": "0"}, "cluster", "A cluster needs at least one"),
    ],
)
def test_each_kind_of_error_is_said_with_the_fields_label(fields, place, message):
    form, _ = read_form(fields, ["heft"])
    assert list(form.errors) == [place]
    assert form.errors[place][0].startswith(message), form.errors


def test_no_policy_and_a_json_spec_keep_their_own_words():
    assert read_form({}, [])[0].errors == {"policies": ["Policies: choose at least 1"]}
    form, _ = read_form({"spec": '{"workload": {"kind": "synthetic"}, "policies": ["heft"]}'}, [])
    assert form.errors == {"spec": ["workload.synthetic.num_tasks: Field required"]}


def test_the_address_of_a_form_holds_what_was_entered_and_reads_back_the_same():
    entered = {**DEFAULTS, "cluster.cpus": "eight", "workload.seed": "", "spec": ""}
    form, _ = read_form(entered, ["heft", "oracle"])
    address = form_address(form, "rate")
    assert address is not None and address.startswith("/runs/new?")
    query = parse_qs(urlsplit(address).query, keep_blank_values=True)
    assert entered_in(query) and query["refused"] == ["rate"]
    again, _ = read_form({k: v[0] for k, v in query.items()}, query["policies"])
    assert again.values == form.values and again.errors == form.errors
    assert not entered_in({}) and not entered_in({"refused": ["rate"]})


def test_a_form_too_long_for_an_address_has_none():
    form, _ = read_form({"spec": '"' + "x" * MAX_ADDRESS + '"'}, [])
    assert form_address(form) is None


def test_a_json_spec_nested_past_the_recursion_limit_is_an_error_of_its_field():
    form, spec = read_form({"spec": "[" * 100_000}, [])
    assert spec is None and form.errors == {
        "spec": ["spec: nested more deeply than a RunSpec can be"]
    }


def test_an_error_without_the_context_its_sentence_needs_keeps_pydantics_words():
    form, _ = read_form({}, ["heft"])
    form.add_invalid(("cluster", "cpus"), "greater_than_equal", "Input should be larger", {})
    assert form.errors == {"cluster.cpus": ["CPU cores: Input should be larger"]}
