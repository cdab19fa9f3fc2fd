"""422s for every JSON body (api/json_body.py, api/errors.py): a non-finite number or a string
that cannot be stored is refused naming its field; a refusal names the field and the rule and
echoes the value cut short; and the answer to a refused request is never a 500, whatever the body.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.errors import MAX_ECHO
from api.main import app
from tests.conftest import EXAMPLE_SPEC, TEST_API_KEY
from tests.integration.test_api_studies import STUDY

AUTH = {"X-API-Key": TEST_API_KEY}
PROFILE = json.loads(
    resources.files("app.profiles").joinpath("v100-skylake-mcsweeney2020.json").read_text()
)
#: Each JSON-accepting endpoint with a body it accepts.
BODIES = {
    "/api/v1/runs": EXAMPLE_SPEC,
    "/api/v1/studies": STUDY,
    "/api/v1/profiles": {**PROFILE, "name": "uploaded"},
    "/api/v1/keys": {"name": "team-c"},
}


@pytest.fixture
def client():
    with TestClient(app, headers=AUTH) as client:
        yield client


def post_text(client, url, text):
    """A body as written, NaN and escapes included (`json=` would refuse NaN or re-encode)."""
    return client.post(url, content=text, headers={"Content-Type": "application/json"})


def errors_of(response):
    assert response.status_code == 422, response.text
    return response.json()["detail"]


@pytest.mark.parametrize(
    ("url", "text", "location", "kind"),
    [
        (
            "/api/v1/runs",
            '{"workload": {"kind": "synthetic", "num_tasks": 10, "load": NaN}, '
            '"cluster": {"cpus": 2, "gpus": 1}, "policies": ["greedy"]}',
            ["body", "workload", "load"],
            "finite_number",
        ),
        (
            "/api/v1/runs",
            '{"workload": {"kind": "synthetic", "num_tasks": 10, "arrival_rate": -Infinity}, '
            '"cluster": {"cpus": 2, "gpus": 1}, "policies": ["greedy"]}',
            ["body", "workload", "arrival_rate"],
            "finite_number",
        ),
        (
            "/api/v1/studies",
            json.dumps({**STUDY, "name": "a\u0000b"}),
            ["body", "name"],
            "string_nul",
        ),
        (
            "/api/v1/studies",
            json.dumps({**STUDY, "name": "a\ud800b"}),
            ["body", "name"],
            "string_surrogate",
        ),
        (
            "/api/v1/keys",
            json.dumps({"name": "x\u0000"}),
            ["body", "name"],
            "string_nul",
        ),
        (
            "/api/v1/profiles",
            json.dumps(
                {**PROFILE, "name": "nan", "timings": [{**PROFILE["timings"][0], "mean_s": 1e999}]}
            ),
            ["body", "timings", 0, "mean_s"],
            "finite_number",
        ),
        (
            "/api/v1/runs",
            json.dumps(
                {
                    **EXAMPLE_SPEC,
                    "workload": {"kind": "wfcommons", "data": {"workflow": {"\udfff": 1}}},
                }
            ),
            ["body", "workload", "data", "workflow", "\\udfff"],
            "string_surrogate",
        ),
    ],
)
def test_a_non_finite_number_or_an_unstorable_string_is_a_422_naming_it(
    client, url, text, location, kind
):
    (error,) = errors_of(post_text(client, url, text))
    assert error["loc"] == location and error["type"] == kind


def test_every_unstorable_value_of_a_body_is_named(client):
    text = (
        '{"workload": {"kind": "synthetic", "num_tasks": 10, "load": Infinity}, '
        '"cluster": {"cpus": 2, "gpus": 1}, "policies": ["greedy", "a\\u0000"], "seed": NaN}'
    )
    locations = [error["loc"] for error in errors_of(post_text(client, "/api/v1/runs", text))]
    assert locations == [["body", "workload", "load"], ["body", "policies", 1], ["body", "seed"]]


def test_nothing_unstorable_reaches_the_database(client):
    response = post_text(client, "/api/v1/studies", json.dumps({**STUDY, "name": "a\u0000b"}))
    assert response.status_code == 422
    assert client.get("/api/v1/studies").json()["total"] == 0


def test_a_refused_large_body_is_answered_briefly_naming_the_field_and_rule(client):
    grid = {"cluster.gpus": list(range(1, 200_001))}  # 1.5 MB; a grid key takes 100 values
    body = {**STUDY, "grid": grid}
    response = client.post("/api/v1/studies", json=body)
    assert len(json.dumps(body)) > 1_400_000
    assert len(response.content) < 2000, len(response.content)
    (error,) = errors_of(response)
    assert "'cluster.gpus' needs 1..100 values" in error["msg"] and error["type"] == "value_error"
    assert isinstance(error["input"], str) and len(error["input"]) <= MAX_ECHO + 1


def test_a_refused_long_string_is_echoed_cut_short(client):
    response = client.post("/api/v1/keys", json={"name": "x" * 100_000 + "!"})
    (error,) = errors_of(response)
    assert error["loc"] == ["body", "name"] and error["type"] == "string_pattern_mismatch"
    assert error["input"] == "x" * MAX_ECHO + "…"


def test_thousands_of_errors_are_listed_up_to_a_bound_and_counted(client):
    body = {**EXAMPLE_SPEC, "workload": {"kind": "inline", "tasks": [1] * 5000}}
    errors = errors_of(client.post("/api/v1/runs", json=body))
    assert len(errors) == 51
    assert errors[0]["loc"] == ["body", "workload", "inline", "tasks", 0]
    assert errors[-1] == {"loc": ["body"], "msg": "and 4950 more errors", "type": "too_many_errors"}


# Values a JSON parser may hand on: non-finite floats, huge integers, strings with NUL, lone
# surrogates or any other code point, nested at any depth.
WEIRD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec=None)),
    st.text(st.sampled_from(["\x00", "\ud800", "\udfff", "a", "é", "\U0001f600"])),
)
WEIRD_VALUES = st.recursive(
    WEIRD_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(codec=None), max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


def _replace_at(document, path, value):
    """`document` with the value at `path` (a list of keys and indexes, followed while it leads
    somewhere; the rest of it ignored) replaced by `value`."""
    if not path or not isinstance(document, dict | list) or not document:
        return value
    copy = list(document) if isinstance(document, list) else dict(document)
    keys = range(len(copy)) if isinstance(copy, list) else list(copy)
    key = list(keys)[path[0] % len(copy)]
    copy[key] = _replace_at(copy[key], path[1:], value)
    return copy


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    url=st.sampled_from(sorted(BODIES)),
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=4),
    value=WEIRD_VALUES,
    whole=st.booleans(),
    raw=st.binary(max_size=20),
)
def test_no_body_makes_the_api_answer_500(client, url, path, value, whole, raw):
    """A weird value put anywhere in a valid body (or the whole body), sent through the app: the
    answer is never a 5xx, is JSON, and stays small."""
    document = value if whole else _replace_at(BODIES[url], path, value)
    text = json.dumps(document, allow_nan=True)  # NaN, Infinity; lone surrogates as \\udXXX
    for body in (text.encode(), raw, text.encode()[:-1] + raw):
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code < 500, response.text
        response.json()
        assert len(response.content) < 20_000
