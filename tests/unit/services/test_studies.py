"""A study's view while its fan-out creates its runs (no database: the rows are built here)."""

import uuid

from app.db.models import Study
from app.services.studies import StudyView, study_run_id


def study(status: str, runs_created: int) -> Study:
    return Study(status=status, total_runs=10, runs_created=runs_created)


def test_runs_not_created_yet_count_as_queued_then_as_cancelled_once_the_study_is():
    creating = StudyView(study("running", 4), {"succeeded": 1, "queued": 3})
    assert creating.counts == {"succeeded": 1, "queued": 9}
    assert (creating.finished_runs, creating.progress) == (1, 0.1)
    cancelled = StudyView(study("cancelled", 4), {"succeeded": 1, "cancelled": 3})
    assert cancelled.counts == {"succeeded": 1, "cancelled": 9}
    assert cancelled.progress == 1.0
    created = StudyView(study("running", 10), {"succeeded": 1, "queued": 9})
    assert created.counts == {"succeeded": 1, "queued": 9}


def test_a_study_run_id_is_a_function_of_the_study_cell_and_repetition():
    one, other = uuid.uuid4(), uuid.uuid4()
    assert study_run_id(one, 3, 7) == study_run_id(one, 3, 7)
    ids = {study_run_id(s, c, r) for s in (one, other) for c in range(3) for r in range(3)}
    assert len(ids) == 18
