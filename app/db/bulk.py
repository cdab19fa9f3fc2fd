"""Bulk inserts with PostgreSQL's COPY, in the caller's transaction.

A study's runs are thousands of rows written at once; COPY loads them several times faster than
multi-row INSERTs (10,000 runs: 0.16 s against 0.44 s). A run's training samples and kernel
observations are not rows each any more but one packed row each (packed.py), whose ~180 KB of
packed columns go in COPY's binary format (`copy_binary_row`): as an INSERT's parameters the
driver sends bytes as hex text that the server parses back, ~1 ms of its CPU per 100 KB
(issue 23: a run's whole overhead is to stay within 20 ms).
"""

from __future__ import annotations

import csv
import io
import json
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Table, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY `rows` (values in `columns` order) into `table`. None is NULL, a dict is JSON, a list
    of numbers a PostgreSQL array."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([_cell(value) for value in row] for row in rows)
    buffer.seek(0)
    _copy(session, table, columns, "csv", buffer)


def copy_binary_row(session: Session, table: Table, values: Mapping[str, Any]) -> None:
    """COPY one row of `values` (by column name; the others take their defaults) into `table` in
    PostgreSQL's binary format: bytes as they are, not as hex text. Each value is encoded as
    its column's type asks (`_binary`): bytes, int, str, uuid, a list of str, or None (NULL)."""
    names = list(values)
    row = [struct.pack(">h", len(names))]
    for name in names:
        value = values[name]
        if value is None:
            row.append(struct.pack(">i", -1))
        else:
            field = _binary(table.c[name].type, value)
            row += [struct.pack(">i", len(field)), field]
    data = io.BytesIO(b"".join([_BINARY_HEADER, *row, struct.pack(">h", -1)]))
    _copy(session, table.name, names, "binary", data)


def _copy(session: Session, table: str, columns: Sequence[str], form: str, data: io.IOBase) -> None:
    """COPY `data`, in the format `form`, into `table`'s `columns`, on the session's connection
    (in its transaction). The driver's errors are raised as SQLAlchemy raises them for the
    statements it runs, the connection invalidated if it was lost, so that session_scope makes
    a lost connection a TransientStoreError here too (COPY goes around SQLAlchemy: the driver's
    cursor reads `data` itself)."""
    connection = session.connection()
    dialect, dbapi_connection = connection.dialect, connection.connection.dbapi_connection
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT {form})"
    cursor = connection.connection.cursor()
    try:
        cursor.copy_expert(statement, data)
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        base = dialect.loaded_dbapi.Error
        raise DBAPIError.instance(statement, None, exc, base, connection_invalidated=lost) from exc
    finally:
        if not cursor.closed:
            cursor.close()


#: The binary format's signature, then its flags and header-extension length (both 0).
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: The type ids of the elements of a text array in the binary format: varchar, text.
_VARCHAR_OID, _TEXT_OID = 1043, 25


def _binary(column_type: TypeEngine[Any], value: Any) -> bytes:
    """`value` in the binary format of a column of `column_type`."""
    if isinstance(column_type, LargeBinary):
        return bytes(value)
    if isinstance(column_type, BigInteger):
        return struct.pack(">q", value)
    if isinstance(column_type, Integer):
        return struct.pack(">i", value)
    if isinstance(column_type, String):
        return str(value).encode()
    if isinstance(column_type, Uuid):
        return uuid.UUID(str(value)).bytes
    if isinstance(column_type, ARRAY) and isinstance(column_type.item_type, String):
        oid = _VARCHAR_OID if column_type.item_type.length is not None else _TEXT_OID
        items = [str(item).encode() for item in value]
        # One dimension, no NULLs, the element type; its length and lower bound (1); each item.
        head = struct.pack(">iiiii", 1, 0, oid, len(items), 1)
        return head + b"".join(struct.pack(">i", len(item)) + item for item in items)
    raise TypeError(f"no binary COPY encoding for a column of type {column_type!r}")


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return "{" + ",".join(map(repr, value)) + "}"
    return value
