"""packed ids in consecutive blocks: a set of samples or observations written from now on draws
its items' ids as one block, first_id..last_id, and stores no `ids` (NULL); sets written before
keep theirs (app/db/packed.py)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

Downgrading packs the ids of the sets that have none, so that every row has them again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("training_sample_sets", "kernel_observation_sets")


def upgrade() -> None:
    for table in TABLES:
        op.alter_column(table, "ids", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            f"UPDATE {table} SET ids = (SELECT string_agg(int8send(first_id + i), ''::bytea "
            "ORDER BY i) FROM generate_series(0, count - 1) AS i) WHERE ids IS NULL"
        )
        op.alter_column(table, "ids", existing_type=sa.LargeBinary(), nullable=False)
