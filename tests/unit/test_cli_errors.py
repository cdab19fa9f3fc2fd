"""How `hms` words an error answer of the API: the sentence of its error document and the
status, never the raw body."""

import httpx

from app.cli.errors import error_message


def answer(status: int, body: object = None, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


def test_a_message_detail_is_printed_as_it_is_with_the_status():
    assert (
        error_message(answer(404, {"detail": "no run starts with c885"}))
        == "no run starts with c885 (HTTP 404)"
    )
    assert error_message(answer(401, {"detail": "missing X-API-Key header"})) == (
        "missing X-API-Key header (HTTP 401)"
    )


def test_one_refused_field_is_one_field_colon_message_line():
    detail = [{"loc": ["path", "run_id"], "msg": "ambiguous: 2 runs start with c885", "type": "x"}]
    assert error_message(answer(422, {"detail": detail})) == (
        "run_id: ambiguous: 2 runs start with c885 (HTTP 422)"
    )


def test_several_refused_fields_are_one_line_each_without_the_echoed_input():
    detail = [
        {
            "loc": ["body", "workload", "num_tasks"],
            "msg": "Input should be greater than 0",
            "type": "greater_than",
            "input": -1,
        },
        {"loc": ["body", "timings", 3, "device"], "msg": "Input should be 'cpu' or 'gpu'"},
        {"loc": ["header", "Idempotency-Key"], "msg": "used before with another body"},
    ]
    assert error_message(answer(422, {"detail": detail})).splitlines() == [
        "the request has 3 errors:",
        "  workload.num_tasks: Input should be greater than 0",
        "  timings.3.device: Input should be 'cpu' or 'gpu'",
        "  Idempotency-Key: used before with another body (HTTP 422)",
    ]


def test_an_unavailable_dependency_says_its_message():
    detail = {"dependency": "database", "message": "database is unavailable, retry later"}
    assert error_message(answer(503, {"detail": detail})) == (
        "database is unavailable, retry later (HTTP 503)"
    )


def test_a_body_of_no_known_shape_is_never_printed():
    assert error_message(answer(500, text="Internal Server Error")) == (
        "the API answered Internal Server Error (HTTP 500)"
    )
    assert error_message(answer(502, {"error": {"nested": [1, 2]}})) == (
        "the API answered Bad Gateway (HTTP 502)"
    )
    assert error_message(answer(599, [1, 2])) == "the API answered an error (HTTP 599)"
