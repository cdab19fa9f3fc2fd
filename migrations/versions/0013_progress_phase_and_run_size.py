"""progress phase and run size: what a worker is doing now (runs and retraining jobs), and how
many tasks a succeeded run simulated (why its per-task schedules were or were not kept)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("runs", "training_jobs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("phase", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("num_tasks", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "num_tasks")
    for table in TABLES:
        op.drop_column(table, "phase")
