"""kernel observations and model fits: what runs observed of kernel executions, and the
performance models fitted on them, per tenant, profile and contention; the fitted version a run
decided with

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kernel_observations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("contention", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("kernel", sa.String(length=32), nullable=False),
        sa.Column("tile_size", sa.Integer(), nullable=False),
        sa.Column("device_kind", sa.String(length=8), nullable=False),
        sa.Column("seconds", postgresql.DOUBLE_PRECISION(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_kernel_observations_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kernel_observations")),
    )
    op.create_index(
        "ix_kernel_observations_tenant_profile_contention_id",
        "kernel_observations",
        ["tenant", "profile", "contention", "id"],
    )
    op.create_table(
        "kernel_model_fits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("contention", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("observation_count", sa.Integer(), nullable=False),
        sa.Column("newest_observation_id", sa.BigInteger(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fit_s", sa.Float(), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kernel_model_fits")),
        sa.UniqueConstraint(
            "tenant",
            "profile",
            "contention",
            "model",
            "version",
            name="uq_kernel_model_fits_version",
        ),
        sa.UniqueConstraint(
            "tenant",
            "profile",
            "contention",
            "model",
            "newest_observation_id",
            "observation_count",
            name="uq_kernel_model_fits_observations",
        ),
    )
    op.add_column("runs", sa.Column("perf_model_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "perf_model_version")
    op.drop_table("kernel_model_fits")
    op.drop_index(
        "ix_kernel_observations_tenant_profile_contention_id", table_name="kernel_observations"
    )
    op.drop_table("kernel_observations")
