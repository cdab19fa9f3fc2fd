"""What a JSON request body may hold beyond what pydantic checks.

Python's json module reads `NaN`, `Infinity` and `-Infinity` (not JSON: RFC 8259, section 6),
and string escapes that make a NUL (`\\u0000`: PostgreSQL's text and jsonb cannot store it) or a
lone surrogate (`\\ud800`: it has no UTF-8 encoding, so no answer or row can carry it). A field
typed as a free-form object (an imported workload, a hardware profile) would pass them on to the
core or the database. `refuse_unstorable_values` refuses every such value, anywhere in a body,
object keys included, with a 422 naming where it is, before pydantic reads the body.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from itertools import islice
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

#: At most this many of a body's unstorable values are named in one answer.
MAX_REPORTED = 20

Location = tuple[str | int, ...]

_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")

NOT_FINITE = ("finite_number", "Input should be a finite number (JSON has no NaN or Infinity)")
HAS_NUL = ("string_nul", "String should not contain NUL (\\u0000): it cannot be stored")
HAS_SURROGATE = (
    "string_surrogate",
    "String should not contain a lone surrogate (\\ud800-\\udfff): it has no UTF-8 encoding",
)


def _string_rule(text: str) -> tuple[str, str] | None:
    """The rule a string breaks, if any: its first unstorable character's."""
    found = _UNSTORABLE_CHARACTER.search(text)
    if found is None:
        return None
    return HAS_NUL if found.group() == "\x00" else HAS_SURROGATE


def unstorable_values(document: Any) -> Iterator[tuple[Location, tuple[str, str], Any]]:
    """(where, (error type, message), value) of each non-finite number and each string with a NUL
    or a lone surrogate in a parsed JSON document, in document order. Walks with a stack, not
    recursion: the depth of a body is the client's choice."""
    # (where, value, the object key it is under: checked as the value is reached)
    pending: list[tuple[Location, Any, str | None]] = [((), document, None)]
    while pending:
        location, value, key = pending.pop()
        key_rule = None if key is None else _string_rule(key)
        if key_rule is not None:
            yield location, key_rule, key
        if isinstance(value, float) and not math.isfinite(value):
            yield location, NOT_FINITE, value
        elif isinstance(value, str):
            rule = _string_rule(value)
            if rule is not None:
                yield location, rule, value
        elif isinstance(value, dict):
            children = [((*location, name), item, name) for name, item in value.items()]
            pending.extend(reversed(children))
        elif isinstance(value, list):
            pending.extend(
                ((*location, index), item, None) for index, item in reversed(list(enumerate(value)))
            )


def _parsed_as_json(request: Request) -> bool:
    """Whether FastAPI reads this request's body as JSON (its rule: an `application/json` or
    `application/*+json` content type), so that `request.json()` is its own parse, cached."""
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None:
        return False
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def refuse_unstorable_values(request: Request) -> None:
    """A router dependency: a 422 for each unstorable value of a JSON body (up to MAX_REPORTED),
    located as pydantic locates its errors (`["body", "workload", "load"]`)."""
    if not _parsed_as_json(request) or not await request.body():
        return
    try:
        document = await request.json()
    except ValueError:  # FastAPI answers 422 (not JSON) or 400 (not UTF-8) itself
        return
    errors = [
        {"type": kind, "loc": ("body", *location), "msg": message, "input": value}
        for location, (kind, message), value in islice(unstorable_values(document), MAX_REPORTED)
    ]
    if errors:
        raise RequestValidationError(errors)
