"""The one table from domain errors to HTTP statuses (api/errors.py)."""

import inspect
import json

import pytest

from api.errors import MAX_ECHO, MAX_MESSAGE, STATUS, status_of, validation_errors_out
from api.limits import RateLimited
from app import errors
from app.errors import HmsError

#: What the API answers today for each domain error (pinned by tests/integration/test_api*.py).
EXPECTED = {
    errors.RunNotFound: 404,
    errors.ScheduleNotFound: 404,
    errors.ScheduleNotReproducible: 409,
    errors.StudyNotFound: 404,
    errors.JobNotFound: 404,
    errors.VersionNotFound: 404,
    errors.KeyNotFound: 404,
    errors.ProfileNotFound: 404,
    errors.IdPrefixNotFound: 404,
    errors.UnknownKey: 403,
    errors.AdminRequired: 403,
    errors.RunNotCancellable: 409,
    errors.RunNotDeletable: 409,
    errors.StudyNotCancellable: 409,
    errors.StudyNotDeletable: 409,
    errors.KeyConflict: 409,
    errors.ProfileConflict: 409,
    errors.RunNotReady: 409,
    errors.StudyNotReady: 409,
    errors.InvalidSpec: 422,
    errors.IdempotencyConflict: 422,
    errors.AmbiguousIdPrefix: 422,
    RateLimited: 429,
    errors.TransientStoreError: 503,
    errors.ClaimLost: 503,
}

KINDS = {errors.NotFound, errors.Conflict, errors.NotReady, errors.Forbidden, errors.Invalid}


@pytest.mark.parametrize("error", sorted(EXPECTED, key=lambda error: error.__name__))
def test_each_domain_error_keeps_its_status(error):
    assert status_of(error) == EXPECTED[error]


def test_every_domain_error_is_of_a_kind_in_the_table():
    defined = {
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, HmsError) and value is not HmsError
    }
    assert defined - KINDS <= set(EXPECTED)  # a new error is added to EXPECTED with its status
    for error in defined:
        assert status_of(error) in STATUS.values()


def test_the_table_names_kinds_not_single_errors():
    assert set(STATUS) == KINDS | {RateLimited, errors.TransientStoreError}


def test_a_refused_value_is_echoed_short_and_as_json_can_carry_it():
    (error,) = validation_errors_out(
        [
            {
                "loc": ("body", "a\ud800", 3),
                "msg": "m" * 5000,
                "type": "value_error",
                "input": {"grid": list(range(100_000))},
                "ctx": {"error": ValueError("bad \udfff"), "limit": float("nan")},
            }
        ]
    )
    assert error["loc"] == ["body", "a\\ud800", 3]
    assert error["msg"] == "m" * MAX_MESSAGE + "…"
    assert error["input"] == json.dumps({"grid": list(range(100))})[:MAX_ECHO] + "…"
    assert error["ctx"] == {"error": "bad \\udfff", "limit": "NaN"}
    json.dumps(error, allow_nan=False).encode()  # what JSONResponse does


def test_numbers_json_cannot_carry_are_echoed_as_text():
    inputs = [float("inf"), 2**53, -(2**53) + 1, b"\xff\x00", None, True, 0.5]
    echoed = [error["input"] for error in validation_errors_out([{"input": x} for x in inputs])]
    assert echoed == ["Infinity", str(2**53), -(2**53) + 1, "\\xff\x00", None, True, 0.5]
