"""full scheduler core: more metrics per result, stored schedules, learning policies' state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_RESULT_COLUMNS = ("p95_flow_time", "slr", "speedup", "gap_to_oracle")


def upgrade() -> None:
    for column in NEW_RESULT_COLUMNS:
        op.add_column("run_results", sa.Column(column, sa.Double(), nullable=True))
    op.add_column("runs", sa.Column("model_version", sa.String(length=64), nullable=True))
    op.add_column("runs", sa.Column("rl_state_version", sa.Integer(), nullable=True))
    op.create_table(
        "run_schedules",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("num_tasks", sa.Integer(), nullable=False),
        sa.Column("devices", postgresql.JSONB(), nullable=False),
        sa.Column("arrays", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_schedules_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "policy", name=op.f("pk_run_schedules")),
    )
    op.create_table(
        "policy_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", postgresql.JSONB(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_policy_states_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_states")),
        sa.UniqueConstraint("policy", "version", name="uq_policy_states_policy_version"),
    )


def downgrade() -> None:
    op.drop_table("policy_states")
    op.drop_table("run_schedules")
    op.drop_column("runs", "rl_state_version")
    op.drop_column("runs", "model_version")
    for column in reversed(NEW_RESULT_COLUMNS):
        op.drop_column("run_results", column)
