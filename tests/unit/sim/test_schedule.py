import re
from dataclasses import replace

import numpy as np

from app.sim.schedule import Schedule
from tests.unit.sim.conftest import sha256_digest


def schedule() -> Schedule:
    return Schedule(
        device=np.array([0, 1, 2], dtype=np.int32),
        partner=np.array([-1, -1, 0], dtype=np.int32),
        gpu_fraction=np.array([0.0, 1.0, 0.25]),
        start=np.array([0.0, 0.5, 1.0]),
        end=np.array([0.5, 1.5, 2.0]),
    )


def test_equal_schedules_have_equal_digests_and_one_bit_changes_it():
    assert schedule().digest() == schedule().digest()
    end = schedule().end.copy()
    end.view(np.uint64)[2] ^= 1  # the last bit of one end time
    assert replace(schedule(), end=end).digest() != schedule().digest()


def test_the_digest_reads_dtypes_and_which_array_holds_what():
    wider = replace(schedule(), device=schedule().device.astype(np.int64))
    assert np.array_equal(wider.device, schedule().device)
    assert wider.digest() != schedule().digest()
    swapped = replace(schedule(), start=schedule().end, end=schedule().start)
    assert swapped.digest() != schedule().digest()


def test_the_digest_is_xxh3_128_hex_and_matches_its_schedule_only():
    assert re.fullmatch("xxh3-128:[0-9a-f]{32}", schedule().digest())
    assert schedule().matches(schedule().digest())
    later = replace(schedule(), end=schedule().end + 1e-9)
    assert not later.matches(schedule().digest())


def test_a_sha256_digest_stored_before_xxh3_still_matches_its_schedule_only():
    old = sha256_digest(schedule())
    assert schedule().matches(old)
    end = schedule().end.copy()
    end.view(np.uint64)[2] ^= 1
    assert not replace(schedule(), end=end).matches(old)
    assert not replace(schedule(), start=schedule().end, end=schedule().start).matches(old)
