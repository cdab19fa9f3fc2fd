"""OpenAPI links: which field of an answer fills which parameter of a later request, so that a
client (Swagger UI lists them; schemathesis follows them) goes from a submitted run to its results
without guessing an id. A link reads only a field the answer always has (an `id`, a `name`),
never one that may be null."""

from __future__ import annotations

from typing import Any

#: The runtime expressions of the answer's `id` and `name`.
BODY_ID = "$response.body#/id"
BODY_NAME = "$response.body#/name"


def link(method: str, path: str, **parameters: str) -> dict[str, Any]:
    """A link to the operation `method path` (as /openapi.json spells the path), its parameters
    filled from runtime expressions (`run_id=BODY_ID`)."""
    pointer = path.replace("~", "~0").replace("/", "~1")  # JSON Pointer escaping (RFC 6901)
    return {"operationRef": f"#/paths/{pointer}/{method.lower()}", "parameters": parameters}


def linked(status_code: int, links: dict[str, dict[str, Any]]) -> dict[int | str, Any]:
    """A route's `responses` entry adding `links` to its answer of `status_code`."""
    return {status_code: {"links": links}}
