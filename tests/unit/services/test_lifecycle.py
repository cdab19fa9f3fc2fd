"""The replay rule of an idempotent submission (lifecycle.never_sent), on rows in memory."""

import pytest

from app.db.models import Run, Study, utcnow
from app.services.lifecycle import never_sent

CASES = {
    "run whose send failed": (Run(status="queued"), True),
    "run sent": (Run(status="queued", enqueued_at=utcnow()), False),
    "run a worker claimed (its message arrived)": (Run(status="running"), False),
    "run cancelled": (Run(status="cancelled"), False),
    "run succeeded": (Run(status="succeeded"), False),
    "study whose send failed (running from the start)": (Study(status="running"), True),
    "study sent": (Study(status="running", enqueued_at=utcnow()), False),
    "study cancelled": (Study(status="cancelled"), False),
    "study succeeded": (Study(status="succeeded"), False),
}


@pytest.mark.parametrize(("row", "waiting"), CASES.values(), ids=CASES.keys())
def test_only_work_waiting_for_its_first_message_is_sent_on_a_replay(row, waiting):
    assert never_sent(row) is waiting
