"""Which rows a tenant may see: its own; an admin key sees all. Every query the API's services
make for runs, studies and retrain jobs goes through `visible_to`."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import ColumnElement, select, true
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
