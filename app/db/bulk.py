"""Bulk inserts with PostgreSQL's COPY, in the caller's transaction.

A study's runs are thousands of rows written at once; COPY loads them several times faster than
multi-row INSERTs (10,000 runs: 0.16 s against 0.44 s). A run's training samples and kernel
observations are not rows each any more but one packed row each (packed.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY `rows` (values in `columns` order) into `table`. None is NULL, a dict is JSON, a list
    of numbers a PostgreSQL array."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([_cell(value) for value in row] for row in rows)
    buffer.seek(0)
    cursor = session.connection().connection.cursor()
    try:
        names = ", ".join(columns)
        cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)", buffer)
    finally:
        cursor.close()


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return "{" + ",".join(map(repr, value)) + "}"
    return value
