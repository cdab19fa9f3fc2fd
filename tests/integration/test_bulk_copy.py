"""A packed set's row goes in COPY's binary format (db/bulk.copy_binary_row): every column reads
back as it was written, bytes bit for bit, NULLs as NULL, text arrays item for item."""

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DataError

from app.db import bulk, packed
from app.db.models import Base, KernelObservationSet, Run
from app.db.session import session_scope
from app.errors import TransientStoreError


def test_a_row_copied_in_the_binary_format_reads_back_column_for_column():
    seconds = np.random.default_rng(3).random(1000)
    with session_scope() as session:
        run = Run(spec={}, priority=0, request_digest="x", tenant="t")
        session.add(run)
        session.flush()
        run_id = run.id
        packed.insert_set(
            session,
            "kernel_observation_sets",
            first_id=2**40,
            count=1000,
            values={
                "tenant": "équipe-b",
                "profile": "v100",
                "contention": "alone",
                "run_id": str(run_id),
                "kernels": ["gemm", "potrf", "ünïcode"],
                "device_kinds": ["cpu", "gpu"],
                "kernel": packed.pack(np.arange(1000) % 3, packed.INT16),
                "device_kind": packed.pack(np.arange(1000) % 2, packed.INT16),
                "pairs": [],
                "tile_size": packed.pack(np.full(1000, 960), packed.INT64),
                "seconds": packed.pack(seconds, packed.FLOAT64),
            },
        )
    with session_scope() as session:
        row = session.scalars(select(KernelObservationSet)).one()
    assert (row.tenant, row.profile, row.contention, row.run_id) == (
        "équipe-b", "v100", "alone", run_id
    )  # fmt: skip
    assert (row.count, row.first_id, row.last_id, row.ids) == (1000, 2**40, 2**40 + 999, None)
    assert row.kernels == ["gemm", "potrf", "ünïcode"] and row.device_kinds == ["cpu", "gpu"]
    assert row.pairs == []
    assert packed.unpack(row.seconds, packed.FLOAT64).tobytes() == seconds.tobytes()
    assert packed.unpack(row.tile_size, packed.INT64).tolist() == [960] * 1000
    assert packed.item_ids(row).tolist() == list(range(2**40, 2**40 + 1000))


def test_a_column_type_without_a_binary_encoding_is_refused_by_name():
    with pytest.raises(TypeError, match="JSONB"):
        bulk._binary(Base.metadata.tables["runs"].c["spec"].type, {"a": 1})


def test_a_value_too_long_for_its_column_is_refused_by_the_database():
    with pytest.raises(DataError, match="too long"), session_scope() as session:
        packed.insert_set(
            session,
            "kernel_observation_sets",
            first_id=1,
            count=1,
            values={
                "tenant": "t" * 65,
                "profile": "p",
                "contention": "alone",
                "run_id": None,
                "kernels": ["k"],
                "device_kinds": ["cpu"],
                "kernel": b"\0\0",
                "device_kind": b"\0\0",
                "pairs": ["k cpu"],
                "tile_size": b"\0" * 8,
                "seconds": b"\0" * 8,
            },
        )


def test_a_connection_lost_in_a_copy_is_transient_as_in_any_statement():
    # COPY goes around SQLAlchemy; its errors must still reach session_scope as SQLAlchemy's,
    # so that a worker retries a run whose finish lost the database (TransientStoreError).
    with pytest.raises(TransientStoreError), session_scope() as session:
        pid = session.scalar(text("SELECT pg_backend_pid()"))
        with session_scope() as other:
            assert other.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        packed.insert_set(session, "training_sample_sets", 1, 1, _one_sample())
    with session_scope() as session:  # the lost connection was not handed out again
        packed.insert_set(session, "training_sample_sets", 1, 1, _one_sample())


def _one_sample():
    return {
        "run_id": None,
        "features": b"\0" * 80,
        "device_kind": b"\0\0",
        "seconds": packed.pack(np.ones(1), packed.FLOAT64),
        "oracle_share": packed.pack(np.ones(1), packed.FLOAT64),
    }
