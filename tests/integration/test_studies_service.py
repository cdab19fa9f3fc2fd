"""The study use cases against the real database (no worker: runs are executed directly)."""

import threading
from collections import defaultdict

import pytest
from sqlalchemy import Engine, event, func, select, update

from app.db import runs as run_store
from app.db import studies as store
from app.db.models import Run, RunResult, Study, TrainingSampleSet
from app.db.session import get_engine, session_scope
from app.db.studies import RESULT_METRICS
from app.errors import (
    IdempotencyConflict,
    InvalidSpec,
    StudyNotCancellable,
    StudyNotFound,
    StudyNotReady,
    TransientStoreError,
)
from app.services import recovery, runs, studies
from app.settings import get_settings
from app.studies.spec import StudySpec, plan_runs
from app.studies.statistics import RunRecord, study_statistics
from tests.conftest import ADMIN
from tests.fakes import RecordingQueue
from tests.timing import wait_for_a_statement_waiting_on_a_lock

BASE = {
    "workload": {"kind": "synthetic", "num_tasks": 60},
    "cluster": {"cpus": 2, "gpus": 1},
    "policies": ["greedy", "heft", "oracle"],
}
STUDY = {
    "name": "load x gpus",
    "base": BASE,
    "grid": {"workload.load": [0.5, 0.9], "cluster.gpus": [1, 2]},
    "repetitions": 3,
}


@pytest.fixture
def queue(clean_database):
    return RecordingQueue()


def submit(queue, body=STUDY, key=None):
    return studies.submit_study(ADMIN, StudySpec.model_validate(body), queue, key)


def fanned_out(queue, body=STUDY):
    """A study submitted, its fan-out then run here (it creates and sends the runs)."""
    submission = submit(queue, body)
    studies.fan_out_study(submission.study.id, queue)
    return submission


def _runs_of(study_id):
    """The study's runs as {(cell, repetition): (id, spec)}."""
    with session_scope() as session:
        rows = session.execute(
            select(Run.study_cell, Run.study_repetition, Run.id, Run.spec).where(
                Run.study_id == study_id
            )
        )
        return {(cell, rep): (run_id, spec) for cell, rep, run_id, spec in rows}


def test_a_study_commits_its_row_then_sends_one_fan_out_which_creates_and_sends_the_runs(queue):
    study = submit(queue).study
    assert (study.total_runs, study.runs_created, _runs_of(study.id)) == (12, 0, {})
    assert queue.fan_outs == [study.id] and queue.committed == {study.id: True}
    view = studies.get_study(ADMIN, study.id)  # runs not created yet count as queued
    assert view.counts == {"queued": 12} and view.progress == 0.0

    assert studies.fan_out_study(study.id, queue) == 12
    assert len(set(queue.runs)) == 12
    assert studies.fan_out_study(study.id, queue) == 0  # all created and sent: nothing twice
    view = studies.get_study(ADMIN, study.id)
    assert view.counts == {"queued": 12} and view.study.runs_created == 12
    runs_ = _runs_of(study.id)
    planned = plan_runs(StudySpec.model_validate(STUDY))  # what the API planned before
    assert {(p.cell, p.repetition): p.spec for p in planned} == {
        key: spec for key, (_, spec) in runs_.items()
    }
    assert (
        {run_id for run_id, _ in runs_.values()}
        == set(queue.runs)
        == {studies.study_run_id(study.id, cell, rep) for cell, rep in runs_}
    )


def _fan_out_dying_at_batch(study_id, queue, number):
    """Run the study's fan-out, its worker dying as it is about to create batch `number` (1,
    2, ...), after batch `number - 1` was created and sent."""
    add = store.add_study_runs
    calls = iter(range(1, 10**6))

    def add_study_runs(session, rows):
        if next(calls) == number:
            raise SystemExit("worker killed")
        add(session, rows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "add_study_runs", add_study_runs)
        with pytest.raises(SystemExit):
            studies.fan_out_study(study_id, queue)


def test_a_study_is_aggregated_only_once_all_its_runs_exist_and_the_sweep_resumes_it(
    queue, monkeypatch
):
    monkeypatch.setattr(studies, "CREATE_BATCH", 5)
    study = submit(queue).study
    _fan_out_dying_at_batch(study.id, queue, 2)
    first = list(queue.runs)
    assert len(first) == 5 and len(_runs_of(study.id)) == 5
    for run_id in first:  # the first batch ends before the second exists
        runs.execute_run(run_id)
    view = studies.get_study(ADMIN, study.id)
    assert (view.study.status, view.counts) == ("running", {"succeeded": 5, "queued": 7})
    assert view.progress == pytest.approx(5 / 12)

    monkeypatch.setattr("app.services.studies.utcnow", lambda: _later())
    monkeypatch.setattr("app.services.recovery.utcnow", lambda: _later())
    assert studies.aggregate_due() == []  # no: 7 runs are still to be created
    assert recovery.sweep(queue).fan_outs == [str(study.id)]  # the dead fan-out, sent again
    monkeypatch.undo()
    monkeypatch.setattr(studies, "CREATE_BATCH", 5)
    assert studies.fan_out_study(study.id, queue) == 7
    assert len(queue.runs) == len(set(queue.runs)) == 12
    for run_id in queue.runs[5:]:
        runs.execute_run(run_id)
    _, statistics = studies.get_statistics(ADMIN, study.id)
    assert [cell["runs"]["succeeded"] for cell in statistics["cells"]] == [3, 3, 3, 3]


def test_two_fan_outs_at_once_create_each_run_once(queue, monkeypatch):
    """A redelivered fan-out beside the first (or the sweep's re-send): each batch starts at
    what the other created."""
    monkeypatch.setattr(studies, "CREATE_BATCH", 5)
    study = submit(queue).study
    spec = StudySpec.model_validate(STUDY)
    one, two = (
        studies._created_batches(study.id, plan_runs(spec), study.request_digest) for _ in range(2)
    )
    created = [next(one), next(two), next(one)]
    assert [len(batch) for batch in created] == [5, 5, 2]
    assert next(two, None) is None and next(one, None) is None
    assert len({run_id for batch in created for run_id in batch}) == 12
    assert len(_runs_of(study.id)) == 12


def test_runs_are_not_created_once_the_study_is_cancelled_or_deleted(queue, monkeypatch):
    monkeypatch.setattr(studies, "CREATE_BATCH", 5)
    study = submit(queue).study
    _fan_out_dying_at_batch(study.id, queue, 2)
    view = studies.cancel_study(ADMIN, study.id)  # 5 runs created, 7 to come
    assert view.counts == {"cancelled": 12} and view.progress == 1.0
    assert studies.fan_out_study(study.id, queue) == 0  # the fan-out, redelivered
    assert len(_runs_of(study.id)) == 5
    assert studies.delete_study(ADMIN, study.id, queue).runs == 12
    with pytest.raises(StudyNotFound):
        studies.fan_out_study(study.id, queue)
    assert studies.purge_study(study.id) == 5
    assert _rows_of(study.id) == (None, 0, 0, 0)


def test_repetitions_share_seeds_across_cells_and_runs_carry_their_cell(queue):
    study = fanned_out(queue).study
    with session_scope() as session:
        rows = session.scalars(select(Run).where(Run.study_id == study.id)).all()
    seeds = {(r.study_cell, r.study_repetition): r.spec["seed"] for r in rows}
    assert {seeds[(c, 2)] for c in range(4)} == {2}
    by_cell = {r.study_cell: r.spec for r in rows if r.study_repetition == 0}
    assert (by_cell[3]["workload"]["load"], by_cell[3]["cluster"]["gpus"]) == (0.9, 2)


def test_the_last_run_to_end_aggregates_once_and_the_statistics_match(queue):
    study = fanned_out(queue).study
    with session_scope() as session:
        ids = session.scalars(select(Run.id).where(Run.study_id == study.id)).all()
    with pytest.raises(StudyNotReady):
        studies.get_statistics(ADMIN, study.id)
    for run_id in ids:
        runs.execute_run(run_id)
    _, statistics = studies.get_statistics(ADMIN, study.id)
    assert studies.get_study(ADMIN, study.id).study.status == "succeeded"
    assert not studies.aggregate_if_done(study.id)  # a redelivered last run changes nothing
    runs.execute_run(ids[-1])
    assert studies.get_statistics(ADMIN, study.id)[1] == statistics
    cell = statistics["cells"][3]
    assert cell["values"] == {"workload.load": 0.9, "cluster.gpus": 2}
    assert cell["runs"]["succeeded"] == 3
    oracle = next(p for p in cell["policies"] if p["policy"] == "oracle")
    flows = []
    with session_scope() as session:
        for run in session.scalars(
            select(Run).where(Run.study_id == study.id, Run.study_cell == 3)
        ):
            flows += [
                r.mean_flow_time for r in runs.get_results(ADMIN, run.id)[1] if r.policy == "oracle"
            ]
    assert oracle["metrics"]["mean_flow_time"]["n"] == 3
    assert oracle["metrics"]["mean_flow_time"]["mean"] == pytest.approx(sum(flows) / 3)


def _whole_study_at_once(study_id, rank_by):
    """The statistics as the aggregation made them before it streamed: every run and every
    result of the study read at once, then `study_statistics`."""
    with session_scope() as session:
        spec = StudySpec.model_validate(session.get(Study, study_id).spec)
        results: dict = defaultdict(dict)
        query = select(RunResult).join(Run, Run.id == RunResult.run_id)
        for result in session.scalars(query.where(Run.study_id == study_id)):
            results[result.run_id][result.policy] = {
                metric: getattr(result, metric)
                for metric in RESULT_METRICS
                if isinstance(getattr(result, metric), int | float)
            }
        records = [
            RunRecord(run.study_cell, run.study_repetition, run.status, results[run.id])
            for run in session.scalars(select(Run).where(Run.study_id == study_id))
        ]
    return study_statistics(records, spec.cells(), rank_by)


def test_the_streamed_aggregation_equals_the_whole_study_read_at_once(queue):
    study = fanned_out(queue).study
    with session_scope() as session:
        ids = session.scalars(select(Run.id).where(Run.study_id == study.id)).all()
        session.execute(update(Run).where(Run.id == ids[4]).values(status="failed"))
    for run_id in ids:
        runs.execute_run(run_id)  # the failed one is skipped: it has ended
    _, statistics = studies.get_statistics(ADMIN, study.id)

    assert statistics == _whole_study_at_once(study.id, statistics["rank_by"])
    assert [cell["runs"]["failed"] for cell in statistics["cells"]].count(1) == 1


def test_the_aggregation_reads_the_runs_through_a_server_side_cursor(queue):
    """Its memory grows with a cell, not the study: the runs are not fetched all at once."""
    study = fanned_out(queue, {**STUDY, "grid": {}, "repetitions": 2}).study
    with session_scope() as session:
        ids = session.scalars(select(Run.id).where(Run.study_id == study.id)).all()
    cursors = []

    def note_cursor(connection, cursor, statement, parameters, context, executemany):
        if "FROM runs LEFT OUTER JOIN run_results" in statement:
            cursors.append(cursor.name)  # psycopg2 names a server-side cursor only

    event.listen(Engine, "before_cursor_execute", note_cursor)
    try:
        for run_id in ids:
            runs.execute_run(run_id)
    finally:
        event.remove(Engine, "before_cursor_execute", note_cursor)
    assert studies.get_study(ADMIN, study.id).study.status == "succeeded"
    assert len(cursors) == 1 and cursors[0] is not None


def test_cancel_stops_the_rest_and_a_cancelled_study_is_not_aggregated(queue):
    study = fanned_out(queue).study
    with session_scope() as session:
        first = session.scalars(select(Run.id).where(Run.study_id == study.id)).first()
    runs.execute_run(first)
    view = studies.cancel_study(ADMIN, study.id)
    assert view.counts == {"succeeded": 1, "cancelled": 11} and view.study.status == "cancelled"
    with pytest.raises(StudyNotCancellable):
        studies.cancel_study(ADMIN, study.id)
    with pytest.raises(StudyNotReady):
        studies.get_statistics(ADMIN, study.id)


def test_the_sweep_aggregates_a_study_whose_aggregation_never_committed(queue, monkeypatch):
    study = fanned_out(queue, {**STUDY, "grid": {}, "repetitions": 2}).study
    with session_scope() as session:
        ids = session.scalars(select(Run.id).where(Run.study_id == study.id)).all()
    monkeypatch.setattr(studies, "aggregate_if_done", lambda study_id: False)  # the worker died
    for run_id in ids:
        runs.execute_run(run_id)
    monkeypatch.undo()
    with session_scope() as session:
        stored = session.get(Study, study.id)
        assert stored is not None and stored.status == "running"
    monkeypatch.setattr("app.services.studies.utcnow", lambda: _later())
    assert studies.aggregate_due() == [str(study.id)]
    assert studies.get_study(ADMIN, study.id).study.status == "succeeded"


def test_the_sweep_sends_a_quiet_study_its_fan_out_again_not_each_unsent_run(queue, monkeypatch):
    """A 100,000-run fan-out takes minutes: its runs are not sent again one by one beside it;
    once the study went quiet (the fan-out message was lost), the fan-out is sent again."""
    study = submit(queue).study  # the fan-out message is recorded, not delivered
    monkeypatch.setattr("app.services.recovery.utcnow", lambda: _later())
    monkeypatch.setattr("app.services.studies.utcnow", lambda: _later())
    report = recovery.sweep(queue)
    assert (report.runs, report.fan_outs) == ([], [str(study.id)])
    assert queue.fan_outs == [study.id, study.id] and queue.runs == []
    monkeypatch.undo()
    assert studies.fan_out_study(study.id, queue) == 12  # the re-sent fan-out, delivered
    assert len(set(queue.runs)) == 12
    monkeypatch.setattr("app.services.recovery.utcnow", lambda: _later())
    monkeypatch.setattr("app.services.studies.utcnow", lambda: _later())
    assert recovery.sweep(queue).fan_outs == []  # every run was sent


def _later():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(hours=1)


def test_same_key_same_study_other_body_conflict_and_bad_grid_names_its_key(queue):
    first = submit(queue, key="k1").study
    again = submit(queue, key="k1")
    assert again.study.id == first.id and not again.created
    with pytest.raises(IdempotencyConflict):
        submit(queue, {**STUDY, "repetitions": 4}, key="k1")
    with pytest.raises(InvalidSpec) as info:
        submit(queue, {**STUDY, "grid": {"cluster.gpus": [1, -3]}})
    assert info.value.location == ("body", "grid", "cluster.gpus")
    with session_scope() as session:  # the refused study left nothing behind
        assert [s.total_runs for s in session.scalars(select(Study))] == [12]


def test_a_replay_sends_the_fan_out_of_a_study_whose_first_send_failed(queue):
    queue.broker_down = True
    with pytest.raises(TransientStoreError) as refused:
        submit(queue, key="k1")
    assert "will be sent when the broker is back" in refused.value.note
    assert queue.fan_outs == []
    queue.broker_down = False
    replay = submit(queue, key="k1")
    assert not replay.created and queue.fan_outs == [replay.study.id]
    assert queue.committed[replay.study.id]
    assert studies.get_study(ADMIN, replay.study.id).study.enqueued_at is not None
    submit(queue, key="k1")  # sent now: a further replay sends nothing
    assert len(queue.fan_outs) == 1


def test_a_replay_does_not_send_a_cancelled_study(queue):
    queue.broker_down = True
    with pytest.raises(TransientStoreError):
        submit(queue, key="k1")
    queue.broker_down = False
    study_id = studies.list_studies(ADMIN, None, 10, 0)[0][0].study.id
    studies.cancel_study(ADMIN, study_id)
    assert submit(queue, key="k1").study.status == "cancelled"
    assert queue.fan_outs == []


def _rows_of(study_id):
    """The study's row (or None), its runs, and their results and training samples."""
    with session_scope() as session:
        run_ids = select(Run.id).where(Run.study_id == study_id)
        return (
            session.get(Study, study_id),
            len(session.scalars(run_ids).all()),
            len(session.scalars(select(RunResult.id).where(RunResult.run_id.in_(run_ids))).all()),
            session.scalar(
                select(func.coalesce(func.sum(TrainingSampleSet.count), 0)).where(
                    TrainingSampleSet.run_id.in_(run_ids)
                )
            ),
        )


def test_a_deleted_study_is_hidden_at_once_and_its_rows_purged_in_batches(queue, monkeypatch):
    study = fanned_out(queue).study  # 12 runs
    with session_scope() as session:
        first = session.scalars(select(Run.id).where(Run.study_id == study.id)).first()
    runs.execute_run(first)  # results and samples to delete too
    studies.cancel_study(ADMIN, study.id)
    deletion = studies.delete_study(ADMIN, study.id, queue)
    assert (deletion.runs, queue.purges) == (12, [study.id])
    with pytest.raises(StudyNotFound):
        studies.get_study(ADMIN, study.id)
    assert studies.list_studies(ADMIN, None, 20, 0) == ([], 0)
    with pytest.raises(StudyNotFound):  # a repeated delete
        studies.delete_study(ADMIN, study.id, queue)
    _, left, results, samples = _rows_of(study.id)
    assert left == 12 and results > 0 and samples > 0  # answered before the rows went
    monkeypatch.setattr(get_settings(), "retention_batch", 5)
    assert studies.purge_study(study.id) == 12  # batches of 5, 5, 2
    assert _rows_of(study.id) == (None, 0, 0, 0)
    assert studies.purge_study(study.id) == 0  # a redelivered purge finds nothing


def test_the_sweep_sends_again_the_purge_of_a_deleted_study_left_behind(queue, monkeypatch):
    study = fanned_out(queue).study
    studies.cancel_study(ADMIN, study.id)
    studies.delete_study(ADMIN, study.id, RecordingQueue(broker_down=True))  # still answers
    assert recovery.sweep(queue).purges == []  # not silent long enough: a purge may be queued
    monkeypatch.setattr("app.services.studies.utcnow", lambda: _later())
    assert recovery.sweep(queue).purges == [str(study.id)] and queue.purges == [study.id]
    monkeypatch.undo()
    assert studies.purge_study(study.id) == 12
    assert recovery.sweep(queue).purges == []


def test_a_run_that_ends_before_the_last_commits_asynchronously_the_aggregation_durably(queue):
    """aggregate_if_done, asked after every run, waits for no fsync unless it aggregates."""
    study = fanned_out(
        queue, {**STUDY, "repetitions": 1, "grid": {"workload.load": [0.5, 0.9]}}
    ).study
    with session_scope() as session:
        ids = session.scalars(select(Run.id).where(Run.study_id == study.id)).all()
    engine, settings = get_engine(), []

    def statement(conn, cursor, sql, *args):
        if sql.startswith("SET LOCAL synchronous_commit"):
            settings.append(sql.rsplit(" ", 1)[-1])

    def commit(conn):
        settings.append("commit")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        for run_id in ids:
            runs.execute_run(run_id)  # each ends with aggregate_if_done
            settings.append("run")
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    first, last = "|".join(settings).split("run")[:2]
    assert first.endswith("OFF|commit|")  # not done: the note that the study is alive
    assert last.endswith("OFF|DEFAULT|commit|")  # aggregated: durable after all
    assert studies.get_study(ADMIN, study.id).study.status == "succeeded"


def test_a_run_that_is_not_the_last_notes_the_study_alive_in_one_statement(queue):
    """What most runs of a study ask after they end: the study touched, and no lock taken, no
    other query, when one of its runs has not ended."""
    study = fanned_out(queue).study  # 12 runs, all queued
    with session_scope() as session:
        before = session.get(Study, study.id).updated_at
    engine, statements = get_engine(), []

    def statement(conn, cursor, sql, *args):
        statements.append(sql.split(None, 2)[:2])

    event.listen(engine, "before_cursor_execute", statement)
    try:
        assert not studies.aggregate_if_done(study.id)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert statements == [["SET", "LOCAL"], ["UPDATE", "studies"]]
    with session_scope() as session:
        assert session.get(Study, study.id).updated_at > before


def test_a_study_that_no_longer_plans_is_cancelled_by_its_fan_out_not_sent_again(queue):
    """Its spec passed at submission; by its fan-out the kernel profile it names is gone (here:
    the stored spec names one that never existed). The fan-out cancels it instead of failing,
    and the sweep has nothing to send again."""
    study = submit(queue).study
    missing = {**BASE, "cluster": {**BASE["cluster"], "profile": "a-profile-removed-since"}}
    with session_scope() as session:
        session.execute(
            update(Study).where(Study.id == study.id).values(spec={**STUDY, "base": missing})
        )
    assert studies.fan_out_study(study.id, queue) == 0
    view = studies.get_study(ADMIN, study.id)
    assert (view.study.status, view.counts) == ("cancelled", {"cancelled": 12})
    assert _runs_of(study.id) == {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("app.services.recovery.utcnow", _later)
        patch.setattr("app.services.studies.utcnow", _later)
        assert recovery.sweep(queue).fan_outs == []


def test_a_cancel_while_a_run_finishes_waits_for_it_and_neither_fails(queue, monkeypatch):
    """The cancel holds the study's row and waits for the finishing run's row; the finish must
    not then wait for the study's row. It did once: a finish that updated its run's row twice
    made PostgreSQL check the run's foreign key again, a KEY SHARE lock on the study's row, and
    the cancel of a 100,000-run study met that deadlock and answered 503."""
    study = fanned_out(queue).study
    finishing = _runs_of(study.id)[(0, 0)][0]
    inside, go, outcomes = threading.Event(), threading.Event(), {}
    add_results = run_store.add_results

    def add_results_then_pause(*args, **kwargs):
        add_results(*args, **kwargs)
        inside.set()  # the run's row is locked by its finish
        go.wait()

    monkeypatch.setattr(run_store, "add_results", add_results_then_pause)

    def finish():
        outcomes["run"] = runs.execute_run(finishing)

    def cancel():
        outcomes["cancel"] = studies.cancel_study(ADMIN, study.id).counts

    threads = [threading.Thread(target=finish), threading.Thread(target=cancel)]
    threads[0].start()
    assert inside.wait(120)
    threads[1].start()
    wait_for_a_statement_waiting_on_a_lock("UPDATE runs")  # the cancel, on the run's row
    go.set()
    for thread in threads:
        thread.join(120)
    assert outcomes == {
        "run": runs.ExecutionOutcome.SUCCEEDED,
        "cancel": {"succeeded": 1, "cancelled": 11},
    }
