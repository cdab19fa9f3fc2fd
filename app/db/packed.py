"""Per-item data a run records by the thousand (training samples, kernel observations), stored as
one row per run: each column a packed numpy array (raw little-endian bytes, read back without
pickle), each item with its own id.

A 30,000-task run records 2,000 samples and 5,000 observations: as rows they took ~100 and
~220 ms to COPY (one process, load 4) — each row a sequence value, a foreign-key check and two or
three index entries — where a run's whole overhead is to stay within 20 ms (issue 23). As one row
each they are one insert.

Each item keeps its own id from a sequence, as when it was a row: the newest-N windows, the
holdout (`id % k`) and the marks stored elsewhere (a fit's newest observation, the automatic
retrain's sample count) keep their meaning. A set draws its ids as one consecutive block
(`draw_ids`, in the transaction that inserts it), so they need not be stored: first_id..last_id.
Sets written before that drew theirs one by one, interleaved with other sets written at the same
time, and keep them packed in `ids`; "the newest N" may take items from several of those
(`newest`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import bulk
from app.db.models import Base

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


def draw_ids(session: Session, sequence: str, count: int) -> int:
    """The first of `count` (>= 1) consecutive new ids from `sequence`, drawn in the caller's
    transaction, best in the one that inserts the set (`insert_set`).

    The block is the sequence's next value moved on by `count - 1` (`setval`). Two sessions doing
    that at once could overlap, so drawers take turns: the database function `hms_draw_ids`
    (migration 0020) holds a session-level advisory lock keyed by the sequence for the draw alone
    and releases it before it returns. Held until the transaction ends (0018's drawers took a
    transaction-scoped lock), the lock would make every run's finish in the cluster wait for the
    one before it, its fsync included, and for as long as a worker cut off mid-finish kept its
    session; drawn in a transaction of their own before the finish (until 0020), the ids cost a
    run a transaction more, ~1.5 ms of a pool process's CPU (issue 23). The sequence is not
    transactional: a block drawn is never drawn again, used or not (a rolled-back finish leaves a
    gap). Drawing the ids one by one instead (a `nextval` per item, aggregated into the row) cost
    PostgreSQL ~2 ms of CPU more for 5,000 items."""
    statement = text("SELECT hms_draw_ids(:sequence, :count)")
    with session.no_autoflush:  # as insert_set: the finish's changes to its row flush once
        return int(session.scalar(statement, {"sequence": sequence, "count": count}))


def insert_set(
    session: Session, table: str, first_id: int, count: int, values: Mapping[str, Any]
) -> None:
    """Insert a set of `count` items into `table`: its `values` (the packed columns and the
    others) and its ids, first_id..first_id + count - 1 (a block from `draw_ids`), not stored.
    One row, COPYed in the binary format (bulk.copy_binary_row: its packed columns are most of
    what a run writes)."""
    # Not through the session's unit of work, so its pending changes are not flushed first: a
    # run's finish changes its row, and a second UPDATE of a row in one transaction makes
    # PostgreSQL check the row's foreign keys again (its study's: KEY SHARE on the study's row,
    # which waits for an aggregation holding it; tests/e2e/test_studies.py, the worker killed
    # while aggregating).
    row = {"count": count, "first_id": first_id, "last_id": first_id + count - 1, "ids": None}
    bulk.copy_binary_row(session, Base.metadata.tables[table], {**row, **values})


class PackedSet(Protocol):
    """A row of packed items: how many, the lowest and highest id, and the ids packed (IDS)
    where they are not first_id..last_id (None)."""

    count: int
    ids: bytes | None
    first_id: int
    last_id: int


S = TypeVar("S", bound=PackedSet)


def item_ids(packed_set: PackedSet) -> np.ndarray:
    """The ids of the set's items, in the order of its packed columns."""
    if packed_set.ids is None:
        return np.arange(packed_set.first_id, packed_set.last_id + 1, dtype=np.int64)
    return unpack(packed_set.ids, IDS)


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
        ids = item_ids(packed_set)
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
        ids = item_ids(packed_set)
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
        [item_ids(packed_set)[keep], *(column[keep] for column in columns(packed_set))]
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
        else int((item_ids(packed_set) > lowest).sum())
        for packed_set in sets
    )
