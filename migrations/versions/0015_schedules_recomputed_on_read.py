"""schedules recomputed on read: each result's schedule digest, and the simulator that ran the run

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("run_results", sa.Column("schedule_digest", sa.String(64), nullable=True))
    op.add_column("runs", sa.Column("engine_version", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "engine_version")
    op.drop_column("run_results", "schedule_digest")
