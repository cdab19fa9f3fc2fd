"""packed samples and observations: a run's training samples and kernel observations in one row
each (app/db/packed.py), every item keeping its id

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

The rows move in both directions with their ids: each item's id is kept (packed into `ids`), and
the new id sequences go on from the old ones, so a fit's `newest_observation_id` and the samples'
holdout (`id % k`) keep their meaning. The arrays are packed here with numpy directly, not with
app code, so that this migration does not change when the app does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SAMPLE_IDS, OBSERVATION_IDS = "training_sample_ids", "kernel_observation_ids"
INT16, INT64, FLOAT64 = "<i2", "<i8", "<f8"
IDS = ">i8"  # as the app packs them (int8send)
PACKED = {
    "training_sample_sets": ("ids", "features", "device_kind", "seconds", "oracle_share"),
    "kernel_observation_sets": ("ids", "kernel", "device_kind", "tile_size", "seconds"),
}


def _pack(values: object, dtype: str) -> bytes:
    return np.ascontiguousarray(np.asarray(values), dtype=dtype).tobytes()


def _unpack(data: bytes, dtype: str) -> np.ndarray:
    return np.frombuffer(data, dtype=dtype)


def _run_id_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="SET NULL"
    )


def _set_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("ids", sa.LargeBinary(), nullable=False),
    ]


def _next_id(bind: sa.Connection, table: str) -> int:
    """The first id after every one the old table's sequence gave (rows deleted included)."""
    sequence = bind.scalar(sa.text(f"SELECT pg_get_serial_sequence('{table}', 'id')"))
    last = bind.scalar(sa.text(f"SELECT CASE WHEN is_called THEN last_value END FROM {sequence}"))
    highest = bind.scalar(sa.text(f"SELECT max(id) FROM {table}"))
    return max(last or 0, highest or 0) + 1


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "training_sample_sets",
        *_set_columns(),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("device_kind", sa.LargeBinary(), nullable=False),
        sa.Column("seconds", sa.LargeBinary(), nullable=False),
        sa.Column("oracle_share", sa.LargeBinary(), nullable=False),
        _run_id_key("training_sample_sets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_sample_sets")),
    )
    op.create_index("ix_training_sample_sets_last_id", "training_sample_sets", ["last_id"])
    op.create_index("ix_training_sample_sets_run_id", "training_sample_sets", ["run_id"])
    op.create_table(
        "kernel_observation_sets",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("contention", sa.String(length=16), nullable=False),
        *_set_columns(),
        sa.Column("kernels", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("device_kinds", postgresql.ARRAY(sa.String(length=8)), nullable=False),
        sa.Column("kernel", sa.LargeBinary(), nullable=False),
        sa.Column("device_kind", sa.LargeBinary(), nullable=False),
        sa.Column("pairs", postgresql.ARRAY(sa.String(length=41)), nullable=False),
        sa.Column("tile_size", sa.LargeBinary(), nullable=False),
        sa.Column("seconds", sa.LargeBinary(), nullable=False),
        _run_id_key("kernel_observation_sets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kernel_observation_sets")),
    )
    op.create_index(
        "ix_kernel_observation_sets_tenant_profile_contention_last_id",
        "kernel_observation_sets",
        ["tenant", "profile", "contention", "last_id"],
    )
    op.create_index("ix_kernel_observation_sets_run_id", "kernel_observation_sets", ["run_id"])
    # Packed numbers hardly compress, and compressing them (pglz, by default above 2 kB) took
    # most of a 5,000-observation insert (22 ms -> 8 ms without, one process, load 2).
    for table in ("training_sample_sets", "kernel_observation_sets"):
        for column in PACKED[table]:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")
    # Owned by a column of its table: TRUNCATE ... RESTART IDENTITY restarts it too.
    for sequence, table, old in (
        (SAMPLE_IDS, "training_sample_sets", "training_samples"),
        (OBSERVATION_IDS, "kernel_observation_sets", "kernel_observations"),
    ):
        start = _next_id(bind, old)
        op.execute(f"CREATE SEQUENCE {sequence} START {start} OWNED BY {table}.first_id")
    _pack_samples(bind)
    _pack_observations(bind)
    op.drop_table("training_samples")
    op.drop_table("kernel_observations")


def _pack_samples(bind: sa.Connection) -> None:
    groups = bind.execute(
        sa.text(
            "SELECT run_id, min(created_at) AS created_at, array_agg(id ORDER BY id) AS ids, "
            "array_agg(features ORDER BY id) AS features, "
            "array_agg(device_kind ORDER BY id) AS device_kind, "
            "array_agg(seconds ORDER BY id) AS seconds, "
            "array_agg(coalesce(oracle_share, 'NaN') ORDER BY id) AS oracle_share "
            "FROM training_samples GROUP BY run_id, created_at ORDER BY min(id)"
        )
    )
    insert = sa.text(
        "INSERT INTO training_sample_sets (run_id, created_at, count, first_id, last_id, ids, "
        "features, device_kind, seconds, oracle_share) VALUES (:run_id, :created_at, :count, "
        ":first_id, :last_id, :ids, :features, :device_kind, :seconds, :oracle_share)"
    )
    for group in groups.mappings().all():
        ids = group["ids"]
        bind.execute(
            insert,
            {
                "run_id": group["run_id"],
                "created_at": group["created_at"],
                "count": len(ids),
                "first_id": ids[0],
                "last_id": ids[-1],
                "ids": _pack(ids, IDS),
                "features": _pack(group["features"], FLOAT64),
                "device_kind": _pack(group["device_kind"], INT16),
                "seconds": _pack(group["seconds"], FLOAT64),
                "oracle_share": _pack(group["oracle_share"], FLOAT64),
            },
        )


def _pack_observations(bind: sa.Connection) -> None:
    groups = bind.execute(
        sa.text(
            "SELECT tenant, profile, contention, run_id, array_agg(id ORDER BY id) AS ids, "
            "array_agg(kernel ORDER BY id) AS kernel, "
            "array_agg(device_kind ORDER BY id) AS device_kind, "
            "array_agg(tile_size ORDER BY id) AS tile_size, "
            "array_agg(seconds ORDER BY id) AS seconds "
            "FROM kernel_observations GROUP BY tenant, profile, contention, run_id "
            "ORDER BY min(id)"
        )
    )
    insert = sa.text(
        "INSERT INTO kernel_observation_sets (tenant, profile, contention, run_id, count, "
        "first_id, last_id, ids, kernels, device_kinds, kernel, device_kind, pairs, tile_size, "
        "seconds) VALUES (:tenant, :profile, :contention, :run_id, :count, :first_id, :last_id, "
        ":ids, :kernels, :device_kinds, :kernel, :device_kind, :pairs, :tile_size, :seconds)"
    )
    for group in groups.mappings().all():
        ids = group["ids"]
        kernels, kernel = np.unique(np.array(group["kernel"], dtype=str), return_inverse=True)
        devices, device = np.unique(np.array(group["device_kind"], dtype=str), return_inverse=True)
        pairs = sorted(
            {f"{k} {d}" for k, d in zip(group["kernel"], group["device_kind"], strict=True)}
        )
        bind.execute(
            insert,
            {
                "tenant": group["tenant"],
                "profile": group["profile"],
                "contention": group["contention"],
                "run_id": group["run_id"],
                "count": len(ids),
                "first_id": ids[0],
                "last_id": ids[-1],
                "ids": _pack(ids, IDS),
                "kernels": kernels.tolist(),
                "device_kinds": devices.tolist(),
                "kernel": _pack(kernel, INT16),
                "device_kind": _pack(device, INT16),
                "pairs": pairs,
                "tile_size": _pack(group["tile_size"], INT64),
                "seconds": _pack(group["seconds"], FLOAT64),
            },
        )


def downgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "training_samples",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("features", postgresql.ARRAY(postgresql.DOUBLE_PRECISION()), nullable=False),
        sa.Column("device_kind", sa.SmallInteger(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("oracle_share", sa.Double(), nullable=True),
        _run_id_key("training_samples"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_samples")),
    )
    op.create_index("ix_training_samples_created_at", "training_samples", ["created_at"])
    op.create_index("ix_training_samples_run_id", "training_samples", ["run_id"])
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
        _run_id_key("kernel_observations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kernel_observations")),
    )
    op.create_index(
        "ix_kernel_observations_tenant_profile_contention_id",
        "kernel_observations",
        ["tenant", "profile", "contention", "id"],
    )
    op.create_index("ix_kernel_observations_run_id", "kernel_observations", ["run_id"])
    _unpack_samples(bind)
    _unpack_observations(bind)
    for old, sequence in (
        ("training_samples", SAMPLE_IDS),
        ("kernel_observations", OBSERVATION_IDS),
    ):
        last = bind.scalar(
            sa.text(f"SELECT last_value - CASE WHEN is_called THEN 0 ELSE 1 END FROM {sequence}")
        )
        if last and last > 0:
            bind.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{old}', 'id'), {last})"))
    op.drop_table("training_sample_sets")  # drops its sequence (owned by a column)
    op.drop_table("kernel_observation_sets")


def _unpack_samples(bind: sa.Connection) -> None:
    insert = sa.text(
        "INSERT INTO training_samples (id, run_id, created_at, features, device_kind, seconds, "
        "oracle_share) VALUES (:id, :run_id, :created_at, :features, :device_kind, :seconds, "
        ":oracle_share)"
    )
    for row in bind.execute(sa.text("SELECT * FROM training_sample_sets ORDER BY id")).mappings():
        ids = _unpack(row["ids"], IDS)
        features = _unpack(row["features"], FLOAT64).reshape(len(ids), -1)
        kinds = _unpack(row["device_kind"], INT16)
        seconds = _unpack(row["seconds"], FLOAT64)
        shares = _unpack(row["oracle_share"], FLOAT64)
        rows = [
            {
                "id": int(ids[i]),
                "run_id": row["run_id"],
                "created_at": row["created_at"],
                "features": features[i].tolist(),
                "device_kind": int(kinds[i]),
                "seconds": float(seconds[i]),
                "oracle_share": None if np.isnan(shares[i]) else float(shares[i]),
            }
            for i in range(len(ids))
        ]
        if rows:
            bind.execute(insert, rows)


def _unpack_observations(bind: sa.Connection) -> None:
    insert = sa.text(
        "INSERT INTO kernel_observations (id, tenant, profile, contention, run_id, kernel, "
        "tile_size, device_kind, seconds) VALUES (:id, :tenant, :profile, :contention, :run_id, "
        ":kernel, :tile_size, :device_kind, :seconds)"
    )
    query = sa.text("SELECT * FROM kernel_observation_sets ORDER BY id")
    for row in bind.execute(query).mappings():
        ids = _unpack(row["ids"], IDS)
        kernel = _unpack(row["kernel"], INT16)
        device = _unpack(row["device_kind"], INT16)
        sizes = _unpack(row["tile_size"], INT64)
        seconds = _unpack(row["seconds"], FLOAT64)
        rows = [
            {
                "id": int(ids[i]),
                "tenant": row["tenant"],
                "profile": row["profile"],
                "contention": row["contention"],
                "run_id": row["run_id"],
                "kernel": row["kernels"][kernel[i]],
                "tile_size": int(sizes[i]),
                "device_kind": row["device_kinds"][device[i]],
                "seconds": float(seconds[i]),
            }
            for i in range(len(ids))
        ]
        if rows:
            bind.execute(insert, rows)
