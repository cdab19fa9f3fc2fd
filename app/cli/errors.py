"""An error answer of the API as the `hms` commands print it: the sentence of its error document
(`detail`, docs/api.md), never the raw body, followed by its HTTP status.

- a message (`{"detail": "run c885b016 does not exist"}`: 401, 403, 404, 409, 429) as it is;
- a refused part of the request (422, pydantic's list): one `field: message` line per error, the
  field its location without where it came from (`body`, `path`, `query`, `header`);
- an unavailable dependency (503, `{"dependency", "message"}`): its message;
- any other body (a proxy's page, an unknown shape): the status's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx  # the commands load it only when they call the API (app/cli/client.py)

#: Where a 422's location starts; the rest of it names the field.
_SOURCES = frozenset({"body", "path", "query", "header", "cookie"})


def error_message(response: httpx.Response) -> str:
    """What went wrong, in words, then `(HTTP <status>)`."""
    try:
        document = response.json()
    except ValueError:
        document = None
    detail = document.get("detail") if isinstance(document, dict) else None
    return f"{describe_detail(detail, response.status_code)} (HTTP {response.status_code})"


def describe_detail(detail: Any, status: int) -> str:
    """The sentence of an error document's `detail`; the status's name if it has none."""
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, Mapping) and isinstance(detail.get("message"), str):
        return str(detail["message"])
    if isinstance(detail, list) and detail and all(isinstance(e, Mapping) for e in detail):
        lines = [_field_error(error) for error in detail]
        if len(lines) == 1:
            return lines[0]
        return "\n".join([f"the request has {len(lines)} errors:", *(f"  {x}" for x in lines)])
    return _status_name(status)


def _field_error(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg") or error.get("type") or "refused")
    location = error.get("loc")
    if not isinstance(location, Sequence) or isinstance(location, str):
        return message
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in _SOURCES:
        parts = parts[1:]
    return f"{'.'.join(parts)}: {message}" if parts else message


def _status_name(status: int) -> str:
    try:
        return f"the API answered {HTTPStatus(status).phrase}"
    except ValueError:
        return "the API answered an error"
