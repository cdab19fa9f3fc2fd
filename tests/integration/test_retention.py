"""Retention: HMS_RETENTION_DAYS deletes finished runs and studies older than that, with what
they recorded, in bounded batches; running work and recent work stay. Off by default."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.db.models import Run, RunResult, RunSchedule, Study, TrainingSampleSet, utcnow
from app.db.session import session_scope
from app.runspec import RunSpec
from app.services import retention, runs, studies
from app.settings import get_settings
from app.studies.spec import StudySpec
from tests.conftest import ADMIN
from tests.fakes import RecordingQueue

SMALL = {
    "workload": {"kind": "synthetic", "num_tasks": 50, "seed": 1},
    "cluster": {"cpus": 2, "gpus": 1},
    # dmda's schedule is stored (it decides with the tenant's fitted kernel model), greedy's
    # recomputed on read
    "policies": ["greedy", "dmda"],
}


def executed_run(seed: int) -> uuid.UUID:
    run_id = runs.submit_run(
        ADMIN, RunSpec.model_validate({**SMALL, "seed": seed}), RecordingQueue()
    ).run.id
    runs.execute_run(run_id)
    return run_id


def queued_run() -> uuid.UUID:
    return runs.submit_run(ADMIN, RunSpec.model_validate(SMALL), RecordingQueue()).run.id


def two_run_study() -> tuple[Study, list[uuid.UUID]]:
    spec = {"name": "s", "base": SMALL, "grid": {"cluster.gpus": [1, 2]}, "repetitions": 1}
    study = studies.submit_study(ADMIN, StudySpec.model_validate(spec), RecordingQueue()).study
    studies.fan_out_study(study.id, RecordingQueue())  # creates the runs
    with session_scope() as session:
        query = select(Run.id).where(Run.study_id == study.id).order_by(Run.study_cell)
        return study, list(session.scalars(query))


def age(model, ids, days: float) -> None:
    """Pretend these rows were created (and, if ended, finished) `days` ago."""
    then = utcnow() - timedelta(days=days)
    with session_scope() as session:
        session.execute(
            update(model).where(model.id.in_(ids)).values(created_at=then, updated_at=then)
        )
        session.execute(
            update(model)
            .where(model.id.in_(ids), model.finished_at.is_not(None))
            .values(finished_at=then)
        )


def count(model, *where) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_retention_is_off_by_default_and_deletes_nothing():
    old = executed_run(1)
    age(Run, [old], days=10_000)
    assert get_settings().retention_days == 0
    assert retention.apply_retention() == retention.RetentionReport(enabled=False)
    assert count(Run) == 1


def test_old_finished_runs_and_studies_go_with_what_they_recorded_in_batches(monkeypatch):
    monkeypatch.setattr(get_settings(), "retention_days", 30)
    monkeypatch.setattr(get_settings(), "retention_batch", 2)  # 5 old runs: batches 2, 2, 1
    old = [executed_run(seed) for seed in range(5)]
    recent = executed_run(10)
    old_but_queued = queued_run()
    age(Run, [*old, old_but_queued], days=31)
    study, study_runs = two_run_study()
    for run_id in study_runs:
        runs.execute_run(run_id)
    assert studies.get_study(ADMIN, study.id).study.status == "succeeded"
    age(Study, [study.id], days=31)
    assert count(TrainingSampleSet, TrainingSampleSet.run_id.in_(old)) > 0
    assert count(RunSchedule, RunSchedule.run_id.in_(old)) == 5  # dmda's

    report = retention.apply_retention()

    assert (report.enabled, report.runs, report.studies) == (True, 5, 1)
    remaining = set(runs_left())
    assert remaining == {recent, old_but_queued}  # recent, and never ended: kept
    for model in (RunResult, RunSchedule, TrainingSampleSet):
        assert count(model, model.run_id.in_([*old, *study_runs])) == 0
    assert count(RunResult, RunResult.run_id == recent) == 2
    assert count(Study) == 0
    assert retention.apply_retention().runs == 0  # nothing left to delete


def runs_left() -> list[uuid.UUID]:
    with session_scope() as session:
        return list(session.scalars(select(Run.id)))


def test_a_running_study_keeps_its_old_runs(monkeypatch):
    monkeypatch.setattr(get_settings(), "retention_days", 1)
    study, (first, _) = two_run_study()
    runs.execute_run(first)
    age(Run, runs_left(), days=5)
    age(Study, [study.id], days=5)
    assert retention.apply_retention().runs == 0
    assert count(Run) == 2


@pytest.mark.parametrize("days", ["-1", "abc"])
def test_a_bad_retention_setting_is_refused(days, monkeypatch):
    from pydantic import ValidationError

    from app.settings import Settings

    monkeypatch.setenv("HMS_RETENTION_DAYS", days)
    with pytest.raises(ValidationError, match="retention_days"):
        Settings()
