"""Property-based API testing: schemathesis generates requests from the OpenAPI schema and runs
every one of its checks on each answer (as `schemathesis run --checks all`): no 5xx; documented
status codes, content types, headers and bodies; schema-violating requests refused; 405 with an
`Allow` that lists the documented methods; auth enforced where declared; and, across calls, a
created resource is readable and a deleted one is gone.

Three tests: each operation alone over the examples, coverage and fuzzing phases; then the
stateful phase, where schemathesis chains operations along the links the OpenAPI document states
(api/links.py: POST /runs -> GET, results, schedule, events, cancel, DELETE /runs/{run_id} with
the run's `id`; the same from a study; POST /models/retrain -> GET /models/retrains/{job_id};
...); then the reads of work that ended. Every request carries a valid key.

The stateful phase follows only the document's links. Links that schemathesis infers on its own
include ones that read a field that may be null (a run's `study_id`, null for a run outside a
study): such a link carries no id, and its request is drawn at random instead. The stateful test
asserts that every link it followed carried a value; the third test follows each link of created
work and asserts that it leads to that work (a fault in a link's path or field fails it there,
where the stateful phase, at its small budget, might not draw the link at all).

Budgets are small (10 examples per operation in the fuzzing phase, 15 scenarios of 6 steps): the
coverage phase, which max_examples does not bound, is most of the time.

What no request here can show:
- `object_level_authorization` needs schemathesis identities (`[auth.wfc]`), configured from its
  CLI config file; here every request is the admin key's, which may read everything. Tenant
  isolation (another tenant's object is a 404) is tested directly in test_api_tenants.py.
- `positive_data_acceptance` is replaced by `schema_valid_data_is_accepted`: the same check, except
  that a 422 whose every error is a rule the schema cannot state passes (see RULES_BEYOND_SCHEMA).
  Any other refusal of schema-valid data still fails, as a workload without `kind` did.

No worker runs here, so runs and studies stay queued: their event streams
(`GET .../runs/{run_id}/events`, `.../studies/{study_id}/events`) would stay open until their
`timeout_s` (300 s by default). Every generated request sets that documented parameter to
STREAM_TIMEOUT_S, so a stream of queued work sends its current state and ends, and its answer can
be checked like any other.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import select

from api.main import app
from app.db.models import Run
from app.db.session import session_scope
from app.services import runs, studies
from tests.conftest import TEST_API_KEY, empty_tables
from tests.fakes import RecordingQueue

#: Error types of the rules the OpenAPI schema cannot state: `value_error` from the specs'
#: validators (one source of an imported workload, `load` or `arrival_rate`, one cost per device,
#: a study's grid keys and size) and `invalid_spec` from the checks at submission (an imported
#: workload's content must parse and form a DAG), and `idempotency_conflict`: an
#: `Idempotency-Key` already used for another body (422, as the IETF Idempotency-Key draft says),
#: and `profile_rule`: a kernel profile's rules across fields (unique device kinds, timings and
#: links naming listed kinds, one timing per cell, quantiles in order), and `int_type` from its
#: strict integers: JSON Schema's `integer` admits 64.0, a profile (app/profilespec.py) does not,
#: and `spec_rule`: what a spec may ask of the kernel profile `cluster.profile` names depends on
#: that profile's data (it must exist, time the workload's kernels, and have measured its tile
#: size; app/runspec.py), which no schema of the RunSpec can state; `ambiguous_id`: an id
#: prefix in a path that several rows the key may see start with (app/services/short_ids.py);
#: and `string_nul` / `string_surrogate`: a string with a NUL (PostgreSQL cannot store it) or a
#: lone surrogate (no UTF-8 encoding) is refused anywhere in a body (api/json_body.py); JSON Schema
#: could state it only as a pattern on every string, free-form objects' keys and values included.
#: Everything else (types, bounds, required fields, unknown fields, the workload's `kind`) the
#: schema states, so its refusal is a fault.
RULES_BEYOND_SCHEMA = frozenset(
    {
        "value_error",
        "invalid_spec",
        "idempotency_conflict",
        "profile_rule",
        "int_type",
        "spec_rule",
        "ambiguous_id",
        "string_nul",
        "string_surrogate",
    }
)

SETTINGS = {
    "deadline": None,
    # The same examples on every run: CI must not turn red on a draw. A new fault is found by
    # changing the schema (new examples follow) or by running with derandomize off.
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


@schemathesis.check
def schema_valid_data_is_accepted(ctx, response, case):
    """`positive_data_acceptance`, except where the refusal names only rules beyond the schema."""
    try:
        positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code != 422 or not _only_rules_beyond_schema(response.json()):
            raise


def _only_rules_beyond_schema(body: object) -> bool:
    errors = body.get("detail") if isinstance(body, dict) else None
    return bool(errors) and all(
        isinstance(error, dict) and error.get("type") in RULES_BEYOND_SCHEMA for error in errors
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.auth()
class AdminKey:
    """Every request carries the admin test key, as explicit auth: `ignored_auth` then probes each
    operation without it and with a made-up key, and expects 401/403."""

    def get(self, case, ctx):
        return TEST_API_KEY

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "X-API-Key": data}


#: Seconds a generated request lets an event stream stay open (its `timeout_s` query parameter).
STREAM_TIMEOUT_S = 0.3
schema.config.parameters = {"query.timeout_s": STREAM_TIMEOUT_S}

schema.config.checks.update(
    included_check_names=["all"], excluded_check_names=["positive_data_acceptance"]
)
schema.config.phases.stateful.inference.algorithms = []  # only the document's links


@schema.parametrize()
@settings(max_examples=10, **SETTINGS)
def test_every_operation_keeps_the_contract(case, servers):
    case.call_and_validate()


#: Each link the stateful phase followed: its name, the values it carried, the answer's status.
FOLLOWED: list[tuple[str, list[Any], int]] = []


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    def step(self, input):
        output = super().step(input)
        if input.transition is not None:
            values = [
                extracted.value.ok()
                for container in input.transition.parameters.values()
                for extracted in container.values()
            ]
            FOLLOWED.append((input.transition.id, values, output.response.status_code))
        return output

    def setup(self):
        """Each scenario starts from empty tables: Hypothesis replays a scenario's choices and
        needs the same answers (a list of studies that an earlier scenario filled would give
        another `GET /studies` and fail the replay as a flaky strategy)."""
        empty_tables()

    def before_call(self, case):
        """A chained call may take `timeout_s` from an earlier response or draw it, not from
        `schema.config.parameters`: an event stream of queued work would then stay open for up
        to an hour. Set it as every other generated request has it."""
        if case.operation.path.endswith("/events"):
            case.query = {**(case.query or {}), "timeout_s": STREAM_TIMEOUT_S}


def test_chained_operations_keep_the_contract(servers):
    FOLLOWED.clear()
    APIWorkflow.run(settings=settings(max_examples=15, stateful_step_count=6, **SETTINGS))
    assert FOLLOWED, "the stateful phase followed no link"
    carried_null = [link for link, values, _ in FOLLOWED if None in values]
    assert not carried_null, f"links that carried null: {sorted(set(carried_null))}"


#: Work that ends, executed in-process: every metric of a result (oracle gives gap_to_oracle), a
#: schedule, and a study's statistics over two cells of two repetitions.
FINISHED_RUN = {
    "workload": {"kind": "synthetic", "num_tasks": 60, "seed": 3},
    "cluster": {"cpus": 2, "gpus": 1},
    "policies": ["greedy", "heft", "oracle"],
}
FINISHED_STUDY = {
    "name": "contract",
    "base": FINISHED_RUN,
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 2,
}
#: What a linked operation needs besides the parameters its link fills.
LINKED_QUERY = {
    "/api/v1/runs/{run_id}/schedule": {"policy": "oracle"},
    "/api/v1/runs/{run_id}/events": {"timeout_s": STREAM_TIMEOUT_S},
    "/api/v1/studies/{study_id}/events": {"timeout_s": STREAM_TIMEOUT_S},
}


def test_the_links_of_created_work_lead_to_it_once_it_ended(servers):
    """No worker runs in the tests above, so no run there ends: a result, a schedule or a study's
    statistics is never read. Here a run and a study are created, executed in-process, and read
    along every link of their 202 answers (a retrain and a key along theirs), each answer under
    every check: the links carry the real id, and lead to the work it names."""
    created = [
        _create("/api/v1/runs", FINISHED_RUN),
        _create("/api/v1/studies", FINISHED_STUDY),
        _create("/api/v1/models/retrain", None),
        _create("/api/v1/keys", {"name": "linked"}),
    ]
    studies.fan_out_study(uuid.UUID(created[1][1].json()["id"]), RecordingQueue())
    with session_scope() as session:
        run_ids = session.scalars(select(Run.id)).all()
    for run_id in run_ids:
        assert runs.execute_run(run_id) == runs.ExecutionOutcome.SUCCEEDED
    followed = []
    for source, response in created:
        links = source.definition.raw["responses"][str(response.status_code)].get("links")
        assert links, f"{source.label} documents no links from its {response.status_code}"
        for name, link in links.items():
            method, path = _operation(link["operationRef"])
            parameters = {
                key: _value(expression, response) for key, expression in link["parameters"].items()
            }
            assert None not in parameters.values(), (name, parameters)
            target = schema[path][method]
            in_path = {
                p["name"] for p in target.definition.raw.get("parameters", []) if p["in"] == "path"
            }
            case = target.Case(
                path_parameters={k: v for k, v in parameters.items() if k in in_path} or None,
                query={
                    **{k: v for k, v in parameters.items() if k not in in_path},
                    **LINKED_QUERY.get(path, {}),
                }
                or None,
                headers={"X-API-Key": TEST_API_KEY},
            )
            answer = case.call_and_validate()
            assert answer.status_code != 404, (name, answer.text)
            followed.append((name, answer.status_code))
    assert ("GetRunResults", 200) in followed and ("GetStudyResults", 200) in followed, followed


def _create(path: str, body: dict[str, Any] | None) -> tuple[Any, Any]:
    operation = schema[path]["POST"]
    with_body = {} if body is None else {"body": body}
    case = operation.Case(**with_body, headers={"X-API-Key": TEST_API_KEY})
    response = case.call_and_validate()
    assert response.status_code in (201, 202), response.text
    return operation, response


def _operation(reference: str) -> tuple[str, str]:
    """(method, path) of an operationRef `#/paths/<JSON Pointer-escaped path>/<method>`."""
    pointer, _, method = reference.removeprefix("#/paths/").rpartition("/")
    return method.upper(), pointer.replace("~1", "/").replace("~0", "~")


def _value(expression: str, response: Any) -> Any:
    """The value of a runtime expression `$response.body#/field` in `response`."""
    return response.json()[expression.removeprefix("$response.body#/")]
