"""tenants: API keys stored hashed; runs, studies and retrain jobs record their tenant;
idempotency keys are unique per tenant

Runs, studies and jobs recorded before keep tenant NULL: only admin keys see them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_keys_digest")),
    )
    op.create_index(
        "uq_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    for table in ("runs", "studies"):
        op.add_column(table, sa.Column("tenant", sa.String(length=64), nullable=True))
        op.drop_constraint(f"uq_{table}_idempotency_key", table, type_="unique")
        op.create_unique_constraint(
            f"uq_{table}_tenant_idempotency_key", table, ["tenant", "idempotency_key"]
        )
        op.create_index(f"ix_{table}_tenant_created_at", table, ["tenant", "created_at"])
    op.add_column("training_jobs", sa.Column("tenant", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("training_jobs", "tenant")
    for table in ("studies", "runs"):
        op.drop_index(f"ix_{table}_tenant_created_at", table_name=table)
        op.drop_constraint(f"uq_{table}_tenant_idempotency_key", table, type_="unique")
        # Keys reused by two tenants would break the old constraint: keep the first use.
        op.execute(
            f"UPDATE {table} SET idempotency_key = NULL WHERE id IN (SELECT id FROM ("
            f"SELECT id, row_number() OVER (PARTITION BY idempotency_key ORDER BY created_at) "
            f"AS n FROM {table} WHERE idempotency_key IS NOT NULL) AS ranked WHERE n > 1)"
        )
        op.create_unique_constraint(f"uq_{table}_idempotency_key", table, ["idempotency_key"])
        op.drop_column(table, "tenant")
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    op.drop_table("api_keys")
