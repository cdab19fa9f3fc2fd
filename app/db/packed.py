"""Per-item data a run records by the thousand (training samples, kernel observations), stored as
one row per run: each column a packed numpy array (raw little-endian bytes, read back without
pickle), each item with its own id.

A 30,000-task run records 2,000 samples and 5,000 observations: as rows they took ~100 and
~220 ms to COPY (one process, load 4) — each row a sequence value, a foreign-key check and two or
three index entries — where a run's whole overhead is to stay within 20 ms (issue 23). As one row
each they are one insert.

Each item keeps its own id, drawn from a sequence (`insert_set`), as when it was a row: the
newest-N windows, the holdout (`id % k`) and the marks stored elsewhere (a fit's newest
observation, the automatic retrain's sample count) keep their meaning. Sets written at once draw
interleaved ids, so "the newest N" may take items from several sets (`newest`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

#: The byte order and width of every packed column (numpy dtype strings); the ids are packed
#: by the database (`int8send`: big-endian).
INT16, INT64, FLOAT64 = "<i2", "<i8", "<f8"
IDS = ">i8"


def pack(values: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(values, dtype=dtype).tobytes()


def unpack(data: bytes, dtype: str, columns: int = 0) -> np.ndarray:
    """The array `pack` stored; `columns` > 0 gives it that many columns (row-major)."""
    array = np.frombuffer(data, dtype=dtype).astype(dtype[1:])  # native order, writable
    return array.reshape(-1, columns) if columns else array


def insert_set(
    session: Session, table: str, sequence: str, count: int, values: Mapping[str, Any]
) -> None:
    """Insert a set of `count` items into `table`: its `values` (the packed columns and the
    others), and `count` new ids from `sequence`, which the database draws and packs itself
    (IDS: `int8send`, big-endian) in the same statement: no round trip to draw them first, and
    no ids sent back and forth. Another session's ids may interleave with them."""
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    statement = text(
        f"INSERT INTO {table} (count, first_id, last_id, ids, {names}) "
        f"SELECT :count, min(id), max(id), string_agg(int8send(id), ''::bytea ORDER BY id), "
        f"{params} FROM (SELECT nextval('{sequence}') AS id "
        "FROM generate_series(1, :count)) AS drawn"
    )
    # Without flushing the session's pending changes first: a run's finish changes its row, and
    # a second UPDATE of a row in one transaction makes PostgreSQL check the row's foreign keys
    # again (its study's: KEY SHARE on the study's row, which waits for an aggregation holding
    # it; tests/e2e/test_studies.py, the worker killed while aggregating).
    with session.no_autoflush:
        session.execute(statement, {"count": count, **values})


class PackedSet(Protocol):
    """A row of packed items: how many, their ids packed (IDS), the lowest and highest."""

    count: int
    ids: bytes
    first_id: int
    last_id: int


S = TypeVar("S", bound=PackedSet)


def newest(sets: Iterable[S], limit: int, upper: int | None = None) -> list[tuple[S, np.ndarray]]:
    """Of `sets` ordered by `last_id`, highest first, those that hold the `limit` newest items
    with an id up to `upper` (None: any), each with a mask of those items in it. Reads sets until
    it has `limit` items, then goes on while a set may still hold one newer than the limit-th
    (a set written at the same time as another drew ids between the other's)."""
    if limit <= 0:
        return []
    chosen: list[tuple[S, np.ndarray]] = []
    held: list[np.ndarray] = []
    threshold: int | None = None  # the limit-th newest id so far
    for packed_set in sets:
        if threshold is not None and packed_set.last_id < threshold:
            break
        ids = unpack(packed_set.ids, IDS)
        keep = np.ones(ids.size, dtype=bool) if upper is None else ids <= upper
        chosen.append((packed_set, keep))
        held.append(ids[keep])
        everything = np.concatenate(held)
        if everything.size >= limit:
            threshold = int(np.partition(everything, everything.size - limit)[-limit])
    if threshold is None:
        return chosen
    final: list[tuple[S, np.ndarray]] = []
    for packed_set, keep in chosen:
        ids = unpack(packed_set.ids, IDS)
        final.append((packed_set, keep & (ids >= threshold)))
    return final


def gather(
    chosen: Sequence[tuple[S, np.ndarray]], columns: Callable[[S], Sequence[np.ndarray]]
) -> list[np.ndarray] | None:
    """The items `newest` chose, oldest first: their ids, then each column that `columns` reads
    from a set (one value per item of the set), the chosen items of every set concatenated and
    ordered by id. None when nothing was chosen."""
    if not chosen:
        return None
    parts = [
        [unpack(packed_set.ids, IDS)[keep], *(column[keep] for column in columns(packed_set))]
        for packed_set, keep in chosen
    ]
    gathered = [np.concatenate(column) for column in zip(*parts, strict=True)]
    order = np.argsort(gathered[0], kind="stable")
    return [column[order] for column in gathered]


def count_above(sets: Sequence[PackedSet], lowest: int) -> int:
    """How many items of `sets` have an id above `lowest`."""
    return sum(
        packed_set.count
        if packed_set.first_id > lowest
        else int((unpack(packed_set.ids, IDS) > lowest).sum())
        for packed_set in sets
    )
