"""studies: a grid of runs with their statistics; runs know their study, cell and repetition

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("total_runs", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("statistics", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'cancelled')", name=op.f("ck_studies_status_known")
        ),
        sa.CheckConstraint("priority BETWEEN 0 AND 9", name=op.f("ck_studies_priority_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_studies_idempotency_key")),
    )
    op.create_index("ix_studies_created_at", "studies", ["created_at"])
    op.create_index("ix_studies_status_updated_at", "studies", ["status", "updated_at"])
    op.add_column("runs", sa.Column("study_id", sa.Uuid(), nullable=True))
    op.add_column("runs", sa.Column("study_cell", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("study_repetition", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_runs_study_id_studies"),
        "runs",
        "studies",
        ["study_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index("ix_runs_study_id_status", "runs", ["study_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_runs_study_id_status", table_name="runs")
    op.drop_constraint(op.f("fk_runs_study_id_studies"), "runs", type_="foreignkey")
    op.drop_column("runs", "study_repetition")
    op.drop_column("runs", "study_cell")
    op.drop_column("runs", "study_id")
    op.drop_index("ix_studies_status_updated_at", table_name="studies")
    op.drop_index("ix_studies_created_at", table_name="studies")
    op.drop_table("studies")
