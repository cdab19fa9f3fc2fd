"""Property-based API testing: schemathesis generates requests from the OpenAPI schema (valid and
invalid ones, bounded) and checks that no answer is a 5xx and every answer conforms to the schema:
documented status code, content type, headers and body."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import app
from tests.conftest import TEST_API_KEY

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors_and_no_schema_violations(case, servers):
    case.call_and_validate(headers={"X-API-Key": TEST_API_KEY}, checks=CHECKS)
