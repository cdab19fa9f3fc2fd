import re
from dataclasses import replace

import numpy as np

from app.sim.schedule import Schedule


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


def test_the_digest_is_sha256_hex():
    assert re.fullmatch("[0-9a-f]{64}", schedule().digest())
