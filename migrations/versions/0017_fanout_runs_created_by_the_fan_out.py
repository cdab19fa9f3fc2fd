"""a study's runs are created by its fan-out: studies.runs_created, and one run per (study, cell,
repetition)

The API records the study's row only; the fan-out worker creates its runs in batches, adding each
batch to `runs_created` in the batch's transaction, so that a redelivered fan-out goes on from
there and the study is not aggregated before all its runs exist (services/studies.py). The unique
constraint makes a run created twice an error rather than a duplicate. Studies recorded before
had all their runs created at submission: runs_created = total_runs.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "studies", sa.Column("runs_created", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute("UPDATE studies SET runs_created = total_runs")
    op.create_unique_constraint(
        "uq_runs_study_cell_repetition", "runs", ["study_id", "study_cell", "study_repetition"]
    )


def downgrade() -> None:
    op.drop_constraint("uq_runs_study_cell_repetition", "runs", type_="unique")
    op.drop_column("studies", "runs_created")
