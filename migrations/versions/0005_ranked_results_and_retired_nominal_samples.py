"""ranked results (each run's rank metric, each result's rank, slowdown and distance to a makespan
lower bound), and retire the training samples and model versions of the old nominal cost model

The samples recorded so far are times of the old nominal cost model, with the old feature vector
(a category feature was added since): they are not observations of the simulated hardware, and a
model trained on them reads features it will no longer be given. They are deleted, and every model
version is retired; `learned` uses the bootstrap model until a retrain on new samples promotes one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_RESULT_COLUMNS = (
    ("mean_slowdown", sa.Double()),
    ("lower_bound", sa.Double()),
    ("gap_to_bound", sa.Double()),
    ("rank", sa.Integer()),
)

RETIRED = "retired by migration 0005: trained on nominal-model times and the old features"


def upgrade() -> None:
    # Results recorded before this revision keep NULL: they were never ranked.
    for name, type_ in NEW_RESULT_COLUMNS:
        op.add_column("run_results", sa.Column(name, type_, nullable=True))
    op.add_column("runs", sa.Column("rank_by", sa.String(length=32), nullable=True))
    op.execute("DELETE FROM training_samples")
    op.execute(
        sa.text(
            "UPDATE model_versions SET is_active = false, status = 'rejected', "
            "reason = CASE WHEN reason = '' THEN :retired ELSE reason || '; ' || :retired END"
        ).bindparams(retired=RETIRED)
    )


def downgrade() -> None:
    """Drops the new columns. The deleted training samples and the retired model versions stay
    as they are: deleting data cannot be undone (restore a backup taken before the upgrade)."""
    op.drop_column("runs", "rank_by")
    for name, _ in reversed(NEW_RESULT_COLUMNS):
        op.drop_column("run_results", name)
