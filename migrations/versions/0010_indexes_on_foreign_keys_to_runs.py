"""indexes on the foreign keys that point at runs and had none: training_samples.run_id,
kernel_observations.run_id, policy_states.run_id

Deleting a run makes PostgreSQL look up the rows of every table whose foreign key points at it
(here to set their run_id to NULL). Without an index on that column, each deleted run is a
sequential scan of the whole table: a study of 2,000 runs was 2,000 scans of training_samples
(bench/study_delete.py; numbers in bench/README.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXED = ("training_samples", "kernel_observations", "policy_states")


def upgrade() -> None:
    for table in INDEXED:
        op.create_index(f"ix_{table}_run_id", table, ["run_id"])


def downgrade() -> None:
    for table in INDEXED:
        op.drop_index(f"ix_{table}_run_id", table_name=table)
