"""Property-based API testing: schemathesis generates requests from the OpenAPI schema and runs
every one of its checks on each answer (as `schemathesis run --checks all`): no 5xx; documented
status codes, content types, headers and bodies; schema-violating requests refused; 405 with an
`Allow` that lists the documented methods; auth enforced where declared; and, across calls, a
created resource is readable and a deleted one is gone.

Two tests: each operation alone over the examples, coverage and fuzzing phases, then the stateful
phase, where schemathesis chains operations along the links it infers from the schema (POST
/runs -> GET, DELETE /runs/{run_id}; POST /studies -> GET, DELETE, cancel /studies/{study_id};
POST /models/retrain -> GET /models/retrains/{job_id}; ...). Every request carries a valid key.

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

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.main import app
from tests.conftest import TEST_API_KEY, empty_tables

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


@schema.parametrize()
@settings(max_examples=40, **SETTINGS)
def test_every_operation_keeps_the_contract(case, servers):
    case.call_and_validate()


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
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
    APIWorkflow.run(settings=settings(max_examples=30, stateful_step_count=6, **SETTINGS))
