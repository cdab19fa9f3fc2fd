"""worker of attempt: which Celery worker (its hostname) ran the latest attempt of a run or a
retraining job, for deployments with workers on several hosts

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("runs", "training_jobs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("worker", sa.String(255), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "worker")
