"""What every list page (runs, studies) shows around its items: where the page is in the list,
and the status filter, whose empty field means "all"."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BeforeValidator

from app.tenancy import Tenant

#: Items per page of a list.
PAGE = 50


def blank_is_none(value: Any) -> Any:
    """A filter's empty field is no filter: a GET form sends `status=` for its "all" option,
    and the pager's links carry the filters as they are."""
    return None if value == "" else value


#: A list filter's query parameter, which may come empty: `Annotated[X | None, Blank, Query()]`.
Blank = BeforeValidator(blank_is_none)


def list_context(
    tenant: Tenant, total: int, offset: int, status: StrEnum | None, statuses: type[StrEnum]
) -> dict[str, Any]:
    """The template context of a page of a list: `total` items match, the page starts at
    `offset`, filtered by `status` (None: all) out of `statuses`."""
    return {
        "tenant": tenant,
        "total": total,
        "offset": offset,
        "page": PAGE,
        "current_status": status.value if status else "",
        "statuses": [s.value for s in statuses],
    }
