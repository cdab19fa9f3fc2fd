"""sample features per task and per device model: a set of training samples written from now on
stores each sampled task's features and each device model's once (`task_features`,
`device_features`), a sample being a (device model, task) pair; sets written before keep each
sample's (`features`, now nullable)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

Downgrading spells the features of the new sets out, packed with numpy here, not with app code,
so that this migration does not change when the app does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "training_sample_sets"
TASK_FEATURES, DEVICE_FEATURES = 5, 5
FLOAT64 = "<f8"


def upgrade() -> None:
    for column in ("task_features", "device_features"):
        op.add_column(TABLE, sa.Column(column, sa.LargeBinary(), nullable=True))
        # Uncompressed, as every packed column (0016): packed numbers hardly compress.
        op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN {column} SET STORAGE EXTERNAL")
    op.alter_column(TABLE, "features", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(f"SELECT id, task_features, device_features FROM {TABLE} WHERE features IS NULL")
    )
    for row in rows.all():
        tasks = np.frombuffer(row.task_features, FLOAT64).reshape(-1, TASK_FEATURES)
        devices = np.frombuffer(row.device_features, FLOAT64).reshape(-1, DEVICE_FEATURES)
        features = np.hstack(
            [np.tile(tasks, (len(devices), 1)), np.repeat(devices, len(tasks), axis=0)]
        )
        bind.execute(
            sa.text(f"UPDATE {TABLE} SET features = :features WHERE id = :id"),
            {"features": np.ascontiguousarray(features, FLOAT64).tobytes(), "id": row.id},
        )
    op.alter_column(TABLE, "features", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_column(TABLE, "device_features")
    op.drop_column(TABLE, "task_features")
