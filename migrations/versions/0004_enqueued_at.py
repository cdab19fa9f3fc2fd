"""record when a run's or a retrain's message was sent, so a crash between commit and enqueue
can be told from a run waiting in the queue

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("runs", "training_jobs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        # Rows from before this revision were sent when they were created.
        op.execute(f"UPDATE {table} SET enqueued_at = created_at")
    op.create_index("ix_runs_status_updated_at", "runs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_updated_at", table_name="runs")
    for table in TABLES:
        op.drop_column(table, "enqueued_at")
