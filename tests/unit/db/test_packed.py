"""db/packed.py: arrays round-trip bit for bit; `newest` finds the N newest items across sets
whose ids interleave (written at the same time, before ids came in blocks) and sets that hold a
consecutive block, up to a bound."""

from dataclasses import dataclass

import numpy as np
import pytest

from app.db import packed


@dataclass
class FakeSet:
    ids: bytes | None
    count: int
    first_id: int
    last_id: int


def fake(ids):
    ids = np.array(ids, dtype=np.int64)
    return FakeSet(packed.pack(ids, packed.IDS), len(ids), int(ids[0]), int(ids[-1]))


def block(first, last):
    """A set written with a consecutive block of ids: none stored."""
    return FakeSet(None, last - first + 1, first, last)


def newest_ids(sets, limit, upper=None):
    ordered = sorted(sets, key=lambda s: s.last_id, reverse=True)
    chosen = packed.newest(ordered, limit, upper)
    found = [packed.item_ids(s)[keep] for s, keep in chosen]
    return sorted(np.concatenate(found).tolist()) if found else []


def brute(sets, limit, upper=None):
    every = sorted(i for s in sets for i in packed.item_ids(s).tolist())
    every = [i for i in every if upper is None or i <= upper]
    return every[-limit:] if limit > 0 else []


def test_arrays_round_trip_bit_for_bit():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1e300, (7, 3))
    values[0, 0] = np.nan
    back = packed.unpack(packed.pack(values, packed.FLOAT64), packed.FLOAT64, 3)
    assert back.tobytes() == values.tobytes()
    kinds = np.array([0, 1, -2, 32767], dtype=np.int16)
    assert packed.unpack(packed.pack(kinds, packed.INT16), packed.INT16).tolist() == [
        0,
        1,
        -2,
        32767,
    ]


def test_newest_across_interleaved_sets_equals_the_newest_ids():
    # Two runs that stored at once drew alternating ids; a third came later.
    sets = [fake([1, 2, 3]), fake([4, 6, 8, 10]), fake([5, 7, 9, 11]), fake([12, 13])]
    for limit in range(0, 15):
        assert newest_ids(sets, limit) == brute(sets, limit), limit


@pytest.mark.parametrize("seed", range(20))
def test_newest_with_a_bound_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(200) + 1  # ids handed out to 6 sets in a random interleaving
    owner = rng.integers(0, 6, 200)
    sets = [fake(np.sort(order[owner == k])) for k in range(6) if (owner == k).any()]
    limit, upper = int(rng.integers(0, 220)), int(rng.integers(1, 230))
    assert newest_ids(sets, limit, upper) == brute(sets, limit, upper)


def test_a_block_set_has_the_ids_first_to_last():
    assert packed.item_ids(block(12, 15)).tolist() == [12, 13, 14, 15]
    assert packed.item_ids(block(7, 7)).tolist() == [7]
    assert packed.item_ids(fake([3, 5, 9])).tolist() == [3, 5, 9]


@pytest.mark.parametrize("seed", range(10))
def test_newest_across_old_interleaved_sets_then_blocks_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(100) + 1  # the old sets' ids, interleaved among 4 sets
    owner = rng.integers(0, 4, 100)
    sets = [fake(np.sort(order[owner == k])) for k in range(4) if (owner == k).any()]
    first = 101
    for size in rng.integers(1, 30, 5):  # then blocks, one after another
        sets.append(block(first, first + int(size) - 1))
        first += int(size) + int(rng.integers(0, 3))  # a rolled-back block leaves a gap
    limit, upper = int(rng.integers(0, first + 10)), int(rng.integers(1, first + 10))
    assert newest_ids(sets, limit, upper) == brute(sets, limit, upper)
    assert newest_ids(sets, limit) == brute(sets, limit)
    gathered = packed.gather(
        packed.newest(sorted(sets, key=lambda s: s.last_id, reverse=True), limit),
        lambda s: [packed.item_ids(s) * 10],  # a column: each item's id x 10
    )
    if gathered is not None:
        assert gathered[0].tolist() == brute(sets, limit)
        assert (gathered[1] == gathered[0] * 10).all()


def test_count_above_counts_items_not_sets():
    sets = [fake([1, 2, 3]), fake([4, 6, 8]), fake([5, 7, 9])]
    assert packed.count_above(sets, 5) == 4  # 6, 7, 8, 9
    assert packed.count_above(sets, 0) == 9
    assert packed.count_above(sets, 9) == 0
    assert packed.count_above([*sets, block(10, 14)], 11) == 3  # 12, 13, 14
