"""A study's runs travel several to a message (app/db/studies.RUNS_PER_MESSAGE): how the fan-out
groups them, how a message of several executes them (services/runs.execute_runs), how the
recovery sweep counts such messages, and what a message that died leaves behind. Against the
real database; runs are executed here, without a worker (tests/e2e covers the worker's task)."""

import math
import uuid

import pytest
from sqlalchemy import select, update

from app.db import studies as store
from app.db.models import Run, Study
from app.db.session import session_scope
from app.services import runs, studies
from app.services.runs import ExecutionOutcome
from app.studies.spec import StudySpec
from tests.conftest import ADMIN
from tests.fakes import RecordingQueue

#: 2 cells x 10 repetitions: per cell a message of 8 runs and one of 2.
STUDY = {
    "name": "shared messages",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 40},
        "cluster": {"cpus": 2, "gpus": 1},
        "policies": ["greedy", "heft"],
    },
    "grid": {"workload.load": [0.5, 0.9]},
    "repetitions": 10,
}


@pytest.fixture
def queue(clean_database):
    return RecordingQueue()


def fanned_out(queue: RecordingQueue) -> uuid.UUID:
    study = studies.submit_study(ADMIN, StudySpec.model_validate(STUDY), queue).study
    studies.fan_out_study(study.id, queue)
    return study.id


def cells_and_repetitions(run_ids: list[uuid.UUID]) -> list[tuple[int, int]]:
    with session_scope() as session:
        rows = dict(
            (run_id, (cell, repetition))
            for run_id, cell, repetition in session.execute(
                select(Run.id, Run.study_cell, Run.study_repetition).where(Run.id.in_(run_ids))
            )
        )
    return [rows[run_id] for run_id in run_ids]


def status_of(run_ids) -> list[str]:
    with session_scope() as session:
        found = dict(session.execute(select(Run.id, Run.status).where(Run.id.in_(run_ids))).all())
    return [found[run_id] for run_id in run_ids]


def study_status(study_id: uuid.UUID) -> str:
    with session_scope() as session:
        return session.get(Study, study_id).status


def test_the_fan_out_sends_the_runs_of_a_cell_eight_to_a_message(queue):
    fanned_out(queue)
    assert [len(group) for group in queue.groups] == [8, 2, 8, 2]
    assert sorted(run for group in queue.groups for run in group) == sorted(queue.runs)
    for group, first in zip(queue.groups, [0, 8, 0, 8], strict=True):
        where = cells_and_repetitions(group)
        assert len({cell for cell, _ in where}) == 1  # one cell a message
        assert [repetition for _, repetition in where] == list(range(first, first + len(group)))


def test_a_fan_out_sending_again_what_was_never_sent_groups_it_the_same_way(queue):
    study_id = fanned_out(queue)
    with session_scope() as session:
        session.execute(update(Run).where(Run.study_id == study_id).values(enqueued_at=None))
    again = RecordingQueue()
    assert studies.fan_out_study(study_id, again) == 20
    assert again.groups == queue.groups


def test_a_message_of_several_runs_executes_them_in_order_and_its_study_once_after(
    queue, monkeypatch
):
    study_id = fanned_out(queue)
    checked = []
    check = studies.aggregate_if_done
    monkeypatch.setattr(studies, "aggregate_if_done", lambda s: checked.append(s) or check(s))
    sinks = []
    for group in queue.groups:
        shared = runs.execute_runs(
            group, lambda run_id: sinks.append(run_id), queue, 5, budget_s=math.inf
        )
        assert [run_id for run_id, _, _ in shared.executed] == group and shared.left == []
        assert {outcome for _, outcome, _ in shared.executed} == {ExecutionOutcome.SUCCEEDED}
        assert all(seconds > 0 for _, _, seconds in shared.executed)
    assert sinks == queue.runs  # each run asked for its own sink, in order
    assert checked == [study_id] * 4  # once a message, not once a run
    assert status_of(queue.runs) == ["succeeded"] * 20
    assert study_status(study_id) == "succeeded"
    # Delivered again (its worker died before acknowledging it): every run is skipped, the
    # study checked again and left as it was.
    shared = runs.execute_runs(queue.groups[0], lambda _: None, queue, 5, budget_s=math.inf)
    assert {outcome for _, outcome, _ in shared.executed} == {ExecutionOutcome.SKIPPED}
    assert study_status(study_id) == "succeeded"


def test_a_message_past_its_budget_starts_no_more_runs_and_leaves_the_rest(queue):
    fanned_out(queue)
    group = queue.groups[0]
    again = RecordingQueue()
    shared = runs.execute_runs(group, lambda _: None, again, 3, budget_s=0.0)  # the first starts
    assert [run_id for run_id, _, _ in shared.executed] == group[:1]
    assert shared.left == group[1:]
    assert status_of(group) == ["succeeded"] + ["queued"] * 7
    # Sent again one message each, with the message's priority.
    assert again.runs == group[1:] and again.groups == []
    assert set(again.priority.values()) == {3}


def test_the_budget_leaves_a_run_its_whole_time_limit_within_the_soft_limit(monkeypatch):
    from app.settings import get_settings

    settings = get_settings()
    monkeypatch.setattr(settings, "run_time_limit_s", 10.0)
    monkeypatch.setattr(settings, "task_soft_time_limit_s", 11)
    assert runs.shared_message_budget_s() == 1.0
    monkeypatch.setattr(settings, "task_soft_time_limit_s", 900)
    assert runs.shared_message_budget_s() == runs.SHARED_MESSAGE_BUDGET_S


def test_the_sweep_counts_a_message_for_each_group_of_runs_not_for_each_run(queue):
    fanned_out(queue)
    lone = runs.submit_run(ADMIN, runs.RunSpec.model_validate(STUDY["base"]), queue).run
    with session_scope() as session:
        assert store.awaiting_run_messages(session) == 4 + 1
    first = queue.groups[0]
    runs.execute_runs(first[:1], lambda _: None, queue, 5)  # one run of the first ended
    with session_scope() as session:
        assert store.awaiting_run_messages(session) == 4 + 1
        session.execute(update(Run).where(Run.id.in_(first)).values(status="succeeded"))
        assert store.awaiting_run_messages(session) == 3 + 1
        session.execute(update(Run).where(Run.id == lone.id).values(status="running"))
        assert store.awaiting_run_messages(session) == 3 + 1  # running: its message unacked


def test_a_message_that_died_fails_its_running_run_and_sends_the_others_again(queue):
    study_id = fanned_out(queue)
    group = queue.groups[0]
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == group[1]).values(status="running"))
    again = RecordingQueue()
    runs.end_shared_message(group, "killed at the hard time limit of 9 s", again, 4)
    assert status_of(group[:2]) == ["queued", "failed"]
    assert again.runs == [group[0], *group[2:]] and set(again.priority.values()) == {4}
    with session_scope() as session:
        error = session.scalar(select(Run.error).where(Run.id == group[1]))
    assert "hard time limit" in error
    assert study_status(study_id) == "running"
