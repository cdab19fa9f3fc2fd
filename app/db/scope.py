"""Which rows a tenant may see: its own; an admin key sees all. Every query the API's services
make for runs, studies and retrain jobs goes through `visible_to`, the resolution of a short id
(`ids_starting_with`) included."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import ColumnElement, String, cast, func, select, true
from sqlalchemy.orm import Session

from app.db.models import Run, Study, TrainingJob
from app.tenancy import Tenant

M = TypeVar("M", Run, Study, TrainingJob)


def visible_to(model: type[Run | Study | TrainingJob], tenant: Tenant) -> ColumnElement[bool]:
    return true() if tenant.is_admin else model.tenant == tenant.name


def get_visible(
    session: Session, model: type[M], row_id: uuid.UUID, *, lock: bool, tenant: Tenant | None
) -> M | None:
    """The row (locked if `lock`); with `tenant`, only if that tenant may see it (None: a
    worker's own lookup)."""
    if tenant is None:
        return session.get(model, row_id, with_for_update=lock)
    query = select(model).where(model.id == row_id, visible_to(model, tenant))
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def ids_starting_with(
    session: Session,
    model: type[Run | Study | TrainingJob],
    hex_prefix: str,
    tenant: Tenant,
    limit: int,
) -> tuple[list[uuid.UUID], int]:
    """The first `limit` ids (in id order) of the rows `tenant` may see whose id's 32 hex digits
    start with `hex_prefix` (lower-case hex only, so no `%` or `_` reaches the LIKE), and how
    many rows match. No index holds the uuid's text: this reads every row the tenant may see
    (for runs and studies, found through their (tenant, created_at) index)."""
    digits = func.replace(cast(model.id, String), "-", "")
    matches = select(model.id, func.count().over().label("total")).where(
        digits.like(f"{hex_prefix}%"), visible_to(model, tenant)
    )
    rows = session.execute(matches.order_by(model.id).limit(limit)).all()
    return [row.id for row in rows], (rows[0].total if rows else 0)
