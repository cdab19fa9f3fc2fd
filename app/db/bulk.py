"""Bulk inserts with PostgreSQL's COPY, in the caller's transaction.

A study's runs, a run's training samples and its kernel observations are thousands of rows
written at once; COPY loads them several times faster than multi-row INSERTs (10,000 runs:
0.16 s against 0.44 s; 2,000 samples: see bench/README.md, Studies).

`copy_rows` takes rows of Python values; `copy_columns` takes whole columns (numpy arrays, or one
value for every row) and formats each column in one pass, not value by value: a 30,000-task run's
5,000 kernel observations took 471 ms as rows, 220 ms as columns (one process, load 4).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

#: A column for `copy_columns`: one value for every row (str, int, UUID or None), a 1-D array
#: (numbers or strings; NaN is NULL), or a 2-D float array (each row a PostgreSQL array).
Column = str | int | uuid.UUID | None | np.ndarray


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY `rows` (values in `columns` order) into `table`. None is NULL, a dict is JSON, a list
    of numbers a PostgreSQL array."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([_cell(value) for value in row] for row in rows)
    buffer.seek(0)
    _copy(session, table, columns, buffer)


def copy_columns(session: Session, table: str, columns: Mapping[str, Column]) -> int:
    """COPY the rows whose `columns` are given whole into `table`; returns how many. The arrays
    must have one entry per row; the values stored are those `copy_rows` stores."""
    lengths = {len(value) for value in columns.values() if isinstance(value, np.ndarray)}
    if len(lengths) != 1:
        raise ValueError(f"copy_columns needs arrays of one length, got {sorted(lengths)}")
    (count,) = lengths
    if count == 0:
        return 0
    texts = [_column_text(value, count) for value in columns.values()]
    body = "\n".join(map(",".join, zip(*texts, strict=True))) + "\n"
    _copy(session, table, list(columns), io.StringIO(body))
    return count


def _copy(session: Session, table: str, columns: Sequence[str], buffer: io.StringIO) -> None:
    cursor = session.connection().connection.cursor()
    try:
        names = ", ".join(columns)
        cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)", buffer)
    finally:
        cursor.close()


def _column_text(value: Column, count: int) -> list[str]:
    """Each row's CSV field of the column."""
    if not isinstance(value, np.ndarray):
        return [_quoted(value)] * count
    if value.ndim == 2:  # arrays of numbers: "{1.5,2.0}", quoted for its commas
        return ['"{' + ",".join(map(repr, row)) + '}"' for row in value.tolist()]
    if value.dtype.kind == "f":  # repr: the shortest text that reads back as the same double
        return ["" if x != x else repr(x) for x in value.tolist()]
    if value.dtype.kind in "iub":
        return list(map(str, value.tolist()))
    # Strings (few distinct ones, e.g. kernel names): each quoted once.
    distinct, index = np.unique(value.astype(str), return_inverse=True)
    quoted = [_quoted(str(text)) for text in distinct.tolist()]
    return [quoted[i] for i in index.tolist()]


def _quoted(value: str | int | uuid.UUID | None) -> str:
    """One CSV field: empty for NULL, a quoted string otherwise (a quoted "" is an empty string)."""
    if value is None:
        return ""
    return '"' + str(value).replace('"', '""') + '"'


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return "{" + ",".join(map(repr, value)) + "}"
    return value
