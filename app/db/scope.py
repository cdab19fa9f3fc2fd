"""Which rows a tenant may see: its own; an admin key sees all. Every query the API's services
make for runs, studies and retrain jobs goes through `visible_to`."""

from __future__ import annotations

from sqlalchemy import ColumnElement, true

from app.db.models import Run, Study, TrainingJob
from app.tenancy import Tenant


def visible_to(model: type[Run | Study | TrainingJob], tenant: Tenant) -> ColumnElement[bool]:
    return true() if tenant.is_admin else model.tenant == tenant.name
