"""copy_columns (a run's samples and kernel observations, column by column) stores exactly what
copy_rows (row by row, Python's csv) stores: the same doubles bit for bit, NULL for NaN, strings
with commas and quotes intact."""

import uuid

import numpy as np
import pytest
from sqlalchemy import text

from app.db.bulk import copy_columns, copy_rows
from app.db.session import session_scope

TABLE = "bulk_check"
COLUMNS = ("label", "run_id", "kind", "size", "seconds", "share", "features")


@pytest.fixture
def table(clean_database):
    with session_scope() as session:
        session.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        session.execute(
            text(
                f"CREATE TABLE {TABLE} (id bigserial, label text, run_id uuid, kind text, "
                "size integer, seconds double precision, share double precision, "
                "features double precision[])"
            )
        )
    yield TABLE
    with session_scope() as session:
        session.execute(text(f"DROP TABLE {TABLE}"))


def stored(label):
    with session_scope() as session:
        rows = session.execute(
            text(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE label = :label ORDER BY id"),
            {"label": label},
        )
        return [tuple(row) for row in rows]


def test_columns_store_what_rows_store_bit_for_bit(table):
    rng = np.random.default_rng(3)
    n = 200
    seconds = rng.lognormal(-6, 4, n)
    seconds[:4] = [5e-324, 1e-300, 1.7976931348623157e308, 0.1 + 0.2]  # extremes, a repr trap
    share = rng.random(n)
    share[::3] = np.nan
    kind = np.array(["po,trf", 'ge"mm', "syrk"], dtype=object)[rng.integers(0, 3, n)]
    size = rng.integers(-5, 100_000, n)
    features = rng.normal(0, 1e5, (n, 3))
    run_id = uuid.uuid4()
    rows = [
        ("rows", run_id, k, s, t, None if np.isnan(h) else h, f)
        for k, s, t, h, f in zip(
            kind.tolist(),
            size.tolist(),
            seconds.tolist(),
            share.tolist(),
            features.tolist(),
            strict=True,
        )
    ]
    columns = ("columns", run_id, kind, size, seconds, share, features)
    with session_scope() as session:
        copy_rows(session, TABLE, COLUMNS, rows)
        assert copy_columns(session, TABLE, dict(zip(COLUMNS, columns, strict=True))) == n
    by_rows, by_columns = stored("rows"), stored("columns")
    assert len(by_columns) == n
    assert [row[1:] for row in by_columns] == [row[1:] for row in by_rows]
    assert [row[4] for row in by_columns] == seconds.tolist()  # the very same doubles
    assert sum(row[5] is None for row in by_columns) == int(np.isnan(share).sum())
    assert {row[2] for row in by_columns} == {"po,trf", 'ge"mm', "syrk"}


def test_an_empty_string_stays_a_string_and_none_is_null(table):
    """(Python's csv writes "" unquoted, which COPY reads as NULL: copy_rows cannot store it.)"""
    with session_scope() as session:
        columns = {"label": "empty", "kind": np.array(["", "x"]), "run_id": None}
        copy_columns(session, TABLE, columns)
    assert [(row[1], row[2]) for row in stored("empty")] == [(None, ""), (None, "x")]


def test_columns_of_different_lengths_are_refused(table):
    with session_scope() as session, pytest.raises(ValueError, match="one length"):
        copy_columns(session, TABLE, {"size": np.arange(3), "seconds": np.ones(4)})


def test_no_rows_is_no_copy(table):
    with session_scope() as session:
        assert copy_columns(session, TABLE, {"label": "none", "size": np.arange(0)}) == 0
    assert stored("none") == []
