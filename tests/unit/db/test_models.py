"""The status enums share one definition of "terminal" and of their CHECK constraint."""

import pytest
from sqlalchemy import CheckConstraint

from app.db.models import JobStatus, Run, RunStatus, Study, StudyStatus, TrainingJob


@pytest.mark.parametrize(
    ("statuses", "terminal"),
    [
        (RunStatus, {"succeeded", "failed", "cancelled"}),
        (JobStatus, {"succeeded", "skipped", "failed"}),
        (StudyStatus, {"succeeded", "cancelled"}),
    ],
)
def test_every_status_but_queued_and_running_is_terminal(statuses, terminal):
    assert {status.value for status in statuses if status.is_terminal} == terminal


@pytest.mark.parametrize(
    ("model", "check"),
    [
        (Run, "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')"),
        (TrainingJob, "status IN ('queued', 'running', 'succeeded', 'skipped', 'failed')"),
        (Study, "status IN ('running', 'succeeded', 'cancelled')"),
    ],
)
def test_the_status_check_is_the_one_the_migrations_created(model, check):
    """Unchanged strings: no migration is needed for the shared definition."""
    (constraint,) = (
        c
        for c in model.__table__.constraints
        if isinstance(c, CheckConstraint) and str(c.name).endswith("status_known")
    )
    assert str(constraint.sqltext) == check
