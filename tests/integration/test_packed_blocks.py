"""A set of samples or observations takes its items' ids as one consecutive block (db/packed.py):
drawers take turns, so blocks never overlap; the lock is held for the draw alone, not by the
transaction that draws (and inserts the set) until it ends; and the ids read back are the
block's."""

import itertools
import threading

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError

from app.db import packed
from app.db import training as store
from app.db.models import TrainingSampleSet
from app.db.session import session_scope
from app.ml.features import FEATURE_NAMES
from tests.timing import wait_for_a_statement_waiting_on_a_lock


def _draw(count):
    with session_scope() as session:
        return store.draw_sample_ids(session, count)


def _insert(session, first_id, count, first_feature=0.0):
    """A set of `count` samples with the ids first_id.., whose first feature counts up from
    `first_feature`."""
    features = np.zeros((count, len(FEATURE_NAMES)))
    features[:, 0] = first_feature + np.arange(count)
    packed.insert_set(
        session,
        "training_sample_sets",
        first_id,
        count,
        {
            "run_id": None,
            "features": packed.pack(features, packed.FLOAT64),
            "device_kind": packed.pack(np.zeros(count), packed.INT16),
            "seconds": packed.pack(np.ones(count), packed.FLOAT64),
            "oracle_share": packed.pack(np.full(count, np.nan), packed.FLOAT64),
        },
    )


def _write(count, first_feature=0.0):
    with session_scope() as session:  # as a run's finish: the draw in the insert's transaction
        _insert(session, store.draw_sample_ids(session, count), count, first_feature)


def _blocks():
    with session_scope() as session:
        rows = session.execute(
            select(
                TrainingSampleSet.first_id,
                TrainingSampleSet.last_id,
                TrainingSampleSet.count,
                TrainingSampleSet.ids,
            ).order_by(TrainingSampleSet.first_id)
        )
        return [tuple(row) for row in rows]


def test_sets_written_at_once_take_consecutive_blocks_that_never_overlap():
    counts = [[int(c) for c in np.random.default_rng(k).integers(1, 400, 8)] for k in range(6)]
    errors = []

    def write(mine):
        try:
            for count in mine:
                _write(count)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(mine,)) for mine in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    blocks = _blocks()
    assert sorted(count for *_, count, _ in blocks) == sorted(c for mine in counts for c in mine)
    for first, last, count, ids in blocks:
        assert ids is None and last - first + 1 == count
    # One after another, no id given twice and none skipped (nothing rolled back).
    assert all(nxt[0] == prev[1] + 1 for prev, nxt in itertools.pairwise(blocks))


def test_a_drawer_waits_for_the_lock_of_a_draw_not_for_the_transaction_that_drew():
    # Drawers take turns on an advisory lock keyed by the sequence: while another session holds
    # it, a draw waits.
    key = text("SELECT pg_advisory_lock(hashtext('packed:training_sample_ids'))")
    unlock = text("SELECT pg_advisory_unlock(hashtext('packed:training_sample_ids'))")
    drawn = {}
    with session_scope() as holder:
        holder.execute(key)
        second = threading.Thread(target=lambda: drawn.setdefault("waited", _draw(30)))
        second.start()
        wait_for_a_statement_waiting_on_a_lock("SELECT hms_draw_ids")
        assert "waited" not in drawn
        holder.execute(unlock)
    second.join(120)
    assert "waited" in drawn
    # A transaction that drew and has not ended (a finish inserting its set, committing) holds
    # no lock: a draw meanwhile goes through, and takes the next block.
    with session_scope() as session:
        first = store.draw_sample_ids(session, 50)
        _insert(session, first, 50)
        assert _draw(10) == first + 50  # another session's draw, not waiting


def test_a_draw_that_fails_leaves_no_lock_behind():
    # The lock is a session-level one: were it kept after an error, the pooled connection would
    # hold it and every later draw would wait forever.
    with pytest.raises(ProgrammingError, match="no_such_sequence"), session_scope() as session:
        packed.draw_ids(session, "no_such_sequence", 5)
    with session_scope() as session:
        held = session.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
    assert held == 0
    assert _draw(3) >= 1


def test_a_rolled_back_block_is_skipped_and_the_samples_read_back_carry_their_blocks_ids():
    try:
        with session_scope() as session:
            store.draw_sample_ids(session, 10)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    _write(7)
    _write(5, first_feature=100.0)
    (first, last, _, _), (second_first, second_last, _, _) = _blocks()
    assert second_first == last + 1
    with session_scope() as session:
        assert session.scalar(text("SELECT last_value FROM training_sample_ids")) == second_last
        samples = store.latest_samples(session, 8)
    # The newest 8: the first set's last 3, then the second's 5, oldest first.
    newest = [*range(last - 2, last + 1), *range(second_first, second_last + 1)]
    assert samples.ids.tolist() == newest
    assert samples.features[:, 0].tolist() == [4.0, 5.0, 6.0, 100.0, 101.0, 102.0, 103.0, 104.0]
    assert first > 10  # the rolled-back block's ids were drawn and not given again
