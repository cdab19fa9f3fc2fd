"""The run use cases against the real database (no worker: execute_run is called directly)."""

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import groupby

import pytest
from sqlalchemy import event, select, text, update

from app.db import policy_states
from app.db import runs as run_store
from app.db.models import PolicyState, Run, RunResult, RunStatus
from app.db.session import get_engine, session_scope
from app.errors import (
    ClaimLost,
    IdempotencyConflict,
    RunNotCancellable,
    RunNotFound,
    RunNotReady,
    ScheduleNotFound,
    TransientStoreError,
)
from app.runspec import RunSpec
from app.services import lifecycle, runs, schedules
from app.services.runs import ExecutionOutcome
from app.services.simulation import BUILDING
from app.settings import get_settings
from app.sim.engine import PROGRESS_EVERY
from app.sim.policies.rl import Rl
from tests.conftest import ADMIN, EXAMPLE_SPEC, LONG_SPEC
from tests.fakes import RecordingQueue
from tests.processes import wait_until

EXAMPLE = EXAMPLE_SPEC
LONG = LONG_SPEC


@pytest.fixture
def queue(servers):
    return RecordingQueue()


def submit(queue, body=EXAMPLE, key=None):
    return runs.submit_run(ADMIN, RunSpec.model_validate(body), queue, key)


def results_of(run_id):
    with session_scope() as session:
        return session.scalars(select(RunResult).where(RunResult.run_id == run_id)).all()


def test_submit_commits_the_run_before_enqueueing_it(queue):
    submission = submit(queue)
    assert submission.created
    run_id = submission.run.id
    assert queue.runs == [run_id] and queue.priority == {run_id: 5}
    assert queue.committed == {run_id: True}
    assert runs.get_run(ADMIN, submission.run.id).status == RunStatus.QUEUED


def test_the_same_idempotency_key_returns_the_same_run(queue):
    first = submit(queue, key="abc")
    again = submit(queue, key="abc")
    assert again.run.id == first.run.id and not again.created
    assert len(queue.runs) == 1
    with pytest.raises(IdempotencyConflict):
        submit(queue, {**EXAMPLE, "seed": 1}, key="abc")


def test_a_replay_sends_a_run_whose_first_send_failed(queue):
    queue.broker_down = True
    with pytest.raises(TransientStoreError) as refused:
        submit(queue, key="abc")
    assert "will be sent when the broker is back" in refused.value.note
    assert queue.runs == []
    queue.broker_down = False
    replay = submit(queue, key="abc")
    assert not replay.created and queue.runs == [replay.run.id]
    assert queue.priority[replay.run.id] == 5 and queue.committed[replay.run.id]
    assert runs.get_run(ADMIN, replay.run.id).enqueued_at is not None
    submit(queue, key="abc")  # sent now: a further replay sends nothing
    assert len(queue.runs) == 1


@pytest.mark.parametrize("then", ["claimed", "cancelled"])
def test_a_replay_does_not_send_a_run_a_worker_claimed_or_that_ended(queue, then):
    queue.broker_down = True
    with pytest.raises(TransientStoreError):
        submit(queue, key="abc")
    queue.broker_down = False
    (run,), _ = runs.list_runs(ADMIN, None, 10, 0)
    if then == "claimed":  # its message arrived after all (the send's note was lost)
        lifecycle.claim(Run, run.id, RunNotFound)
    else:
        runs.cancel_run(ADMIN, run.id, queue)
    assert submit(queue, key="abc").run.status == ("running" if then == "claimed" else "cancelled")
    assert queue.runs == []


def test_a_run_on_a_kernel_profile_that_was_accepted_also_executes(queue):
    body = {
        "workload": {"kind": "tiled", "factorization": "cholesky", "tiles": 4, "tile_size": 256},
        "cluster": {"cpus": 4, "gpus": 1, "profile": "v100-skylake-mcsweeney2020"},
        "policies": ["greedy", "heft", "oracle"],
    }
    run_id = submit(queue, body).run.id
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    assert runs.get_run(ADMIN, run_id).status == "succeeded"


def test_execute_run_writes_one_result_per_policy_and_succeeds(queue):
    run_id = submit(queue).run.id
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    run = runs.get_run(ADMIN, run_id)
    assert (run.status, run.progress, run.attempts) == ("succeeded", 1.0, 1)
    assert run.started_at <= run.finished_at
    rows = results_of(run_id)
    assert sorted(row.policy for row in rows) == ["greedy", "random", "round_robin"]
    assert all(row.makespan > 0 and 0 < row.mean_utilization <= 1 for row in rows)
    assert all(
        set(row.utilization) == {*(f"cpu{i}" for i in range(8)), *(f"gpu{i}" for i in range(4))}
        for row in rows
    )


@contextmanager
def commits() -> Iterator[list[str]]:
    """The transactions committed meanwhile, in order: "durable" if the commit waited for the
    WAL flush (an fsync on a durable server), "asynchronous" if it ran `synchronous_commit` off."""
    engine, seen = get_engine(), []

    def statement(conn, cursor, sql, *args):
        if sql.startswith("SET LOCAL synchronous_commit TO OFF"):
            conn.info["asynchronous"] = True

    def commit(conn):
        seen.append("asynchronous" if conn.info.pop("asynchronous", False) else "durable")

    def rollback(conn):
        conn.info.pop("asynchronous", None)

    hooks = [("before_cursor_execute", statement), ("commit", commit), ("rollback", rollback)]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield seen
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


def test_a_run_waits_for_one_durable_commit_its_finish(queue):
    """Claim and progress reports are asynchronous commits (lifecycle.py says why): only the
    finish, which stores the results, waits for an fsync."""
    run_id = submit(queue).run.id
    with commits() as seen:
        assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    assert seen.count("durable") == 1 and seen[-1] == "durable"
    assert seen[0] == "asynchronous"  # the claim


def test_the_claim_writes_the_first_phase_and_a_run_within_one_interval_reports_nothing(
    queue, monkeypatch
):
    """The claim records the phase a run begins in, so its first progress report need not be
    written: a run shorter than the progress interval commits twice, its claim (asynchronous) and
    its finish, which draws its samples' ids itself (db/packed.draw_ids)."""
    monkeypatch.setattr(get_settings(), "progress_interval_s", 3600)
    run_id = submit(queue).run.id
    claimed = lifecycle.claim(Run, run_id, RunNotFound, "celery@here", BUILDING)
    assert (claimed.status, claimed.phase) == ("running", BUILDING)
    with session_scope() as session:  # back to queued: execute_run claims it itself
        session.execute(update(Run).where(Run.id == run_id).values(status="queued", attempts=0))
    with commits() as seen:
        assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    assert seen == ["asynchronous", "durable"]


def test_a_runs_finish_updates_its_row_once(queue):
    """One UPDATE of the run's row in its finish: a second one in the same transaction makes
    PostgreSQL check the row's foreign keys again, which takes a lock on its study's row and
    waits behind another run's aggregation (the packed samples' insert must not flush early)."""
    run_id = submit(queue).run.id
    engine, updates = get_engine(), []

    def statement(conn, cursor, sql, *args):
        if sql.startswith("UPDATE runs SET"):
            updates.append(sql)

    event.listen(engine, "before_cursor_execute", statement)
    try:
        assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    finishing = [sql for sql in updates if "rank_by" in sql]
    assert len(finishing) == 1 and "status" in finishing[0], updates


def test_redelivered_run_is_not_executed_twice(queue):
    run_id = submit(queue).run.id
    runs.execute_run(run_id)
    first = {row.policy: row.makespan for row in results_of(run_id)}
    assert runs.execute_run(run_id) == ExecutionOutcome.SKIPPED
    assert {row.policy: row.makespan for row in results_of(run_id)} == first
    assert runs.get_run(ADMIN, run_id).attempts == 1


def test_of_two_deliveries_in_hand_at_once_the_later_finisher_stores_nothing(queue, monkeypatch):
    """A partition can put one run in two workers' hands: the first holds its message, cut off,
    and the broker hands it to another after the visibility timeout. Both claim it and simulate;
    the finish is a conditional write under the row's lock (running -> succeeded), so whichever
    ends first stores the results and the other's are discarded, not stored a second time."""
    run_id = submit(queue).run.id
    complete = runs._complete
    stored = {}

    def second_delivery_finishes_meanwhile(*args):
        # The first delivery simulated and made its last progress report (the run was running);
        # before it stores, the second delivery claims, simulates and stores.
        monkeypatch.setattr(runs, "_complete", complete)
        assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
        stored.update(stored_rows(run_id))
        return complete(*args)

    monkeypatch.setattr(runs, "_complete", second_delivery_finishes_meanwhile)
    assert runs.execute_run(run_id) == ExecutionOutcome.SKIPPED  # the first one's result dropped
    run = runs.get_run(ADMIN, run_id)
    assert (run.status, run.attempts) == ("succeeded", 2)
    assert stored_rows(run_id) == stored
    assert stored["run_results"] == len(EXAMPLE["policies"]) and stored["training_sample_sets"] == 1


def stored_rows(run_id):
    """How many rows of each table the run's results wrote."""
    tables = (
        "run_results",
        "run_schedules",
        "training_sample_sets",
        "kernel_observation_sets",
        "policy_states",
    )
    with session_scope() as session:
        return {
            table: session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE run_id = :id"), {"id": run_id}
            )
            for table in tables
        }


def test_a_run_cancelled_after_its_last_progress_report_records_nothing(queue, monkeypatch):
    run_id = submit(queue).run.id
    simulate = runs.simulate_spec

    def simulate_then_cancel(*args):
        simulation = simulate(*args)
        runs.cancel_run(ADMIN, run_id, queue)
        return simulation

    monkeypatch.setattr(runs, "simulate_spec", simulate_then_cancel)
    assert runs.execute_run(run_id) == ExecutionOutcome.SKIPPED
    run = runs.get_run(ADMIN, run_id)
    assert (run.status, run.rank_by) == ("cancelled", None)
    assert results_of(run_id) == []


def test_a_run_left_running_by_a_crashed_worker_is_executed_again(queue):
    run_id = submit(queue).run.id
    with session_scope() as session:
        run = run_store.get_run(session, run_id)
        run.status, run.attempts = RunStatus.RUNNING, 1
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    assert runs.get_run(ADMIN, run_id).attempts == 2
    assert len(results_of(run_id)) == 3


def test_a_run_whose_worker_was_lost_max_attempts_times_ends_failed_not_skipped(queue, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_attempts", 2)
    run_id = submit(queue).run.id
    with session_scope() as session:  # two claims, each worker lost: left running
        run = run_store.get_run(session, run_id)
        run.status, run.attempts = RunStatus.RUNNING, 2
    assert runs.execute_run(run_id) == ExecutionOutcome.FAILED  # the third delivery
    failed = runs.get_run(ADMIN, run_id)
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert failed.error == "gave up after 2 attempts: the worker running it was lost each time"
    assert runs.execute_run(run_id) == ExecutionOutcome.SKIPPED  # a later delivery: ended


def test_a_run_whose_claim_was_lost_is_retried_not_skipped(queue, monkeypatch):
    """The claim is an asynchronous commit: a database crash can undo it while the run executes.
    Finding the run queued again at the end is then a transient fault (retry, claim again), not
    "ended by another delivery" (acknowledged, and the run left queued)."""
    run_id = submit(queue).run.id
    simulate = runs.simulate_spec

    def claim_lost_meanwhile(*args):
        with session_scope() as session:
            run = run_store.get_run(session, run_id)
            run.status, run.attempts, run.started_at = RunStatus.QUEUED, 0, None
        return simulate(*args)

    monkeypatch.setattr(runs, "simulate_spec", claim_lost_meanwhile)
    with pytest.raises(ClaimLost):
        runs.execute_run(run_id)
    assert runs.get_run(ADMIN, run_id).status == "queued" and results_of(run_id) == []
    monkeypatch.setattr(runs, "simulate_spec", simulate)
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED  # the retry
    assert len(results_of(run_id)) == 3


def test_same_spec_and_seed_give_bit_identical_results(queue):
    first = submit(queue).run.id
    second = submit(queue).run.id
    runs.execute_run(first)
    runs.execute_run(second)

    def numbers(run_id):
        return sorted(
            (r.policy, r.makespan, r.mean_flow_time, r.energy, r.cost) for r in results_of(run_id)
        )

    assert numbers(first) == numbers(second)


def test_a_spec_the_core_rejects_fails_once_with_a_readable_error(queue):
    body = {
        **EXAMPLE,
        "workload": {"kind": "synthetic", "num_tasks": 5},
        "cluster": {"cpus": 0, "gpus": 2, "gpu": {"memory": 0.001}},  # 1 kB: no tile fits
    }
    run_id = submit(queue, body).run.id
    assert runs.execute_run(run_id) == ExecutionOutcome.FAILED
    run = runs.get_run(ADMIN, run_id)
    assert run.status == "failed" and run.attempts == 1
    assert "fit on no device" in run.error
    assert results_of(run_id) == []
    assert runs.execute_run(run_id) == ExecutionOutcome.SKIPPED
    with pytest.raises(RunNotReady, match=r"it is failed: invalid spec: .*fit on no device"):
        runs.get_results(ADMIN, run_id)


def test_results_are_not_ready_until_the_run_succeeded(queue):
    run_id = submit(queue).run.id
    with pytest.raises(RunNotReady, match=f"^run {run_id} has no results, it is queued$"):
        runs.get_results(ADMIN, run_id)
    runs.execute_run(run_id)
    run, results = runs.get_results(ADMIN, run_id)
    assert run.status == "succeeded" and len(results) == len(EXAMPLE["policies"])


def test_progress_is_recorded_while_running_and_cancel_stops_the_run(queue):
    run_id = submit(queue, LONG).run.id
    seen = []

    def sink(progress, stage):
        seen.append((progress, runs.get_run(ADMIN, run_id).progress))
        if len(seen) == 3:
            runs.cancel_run(ADMIN, run_id, queue)

    assert runs.execute_run(run_id, sink) == ExecutionOutcome.CANCELLED
    assert len(seen) == 3  # it stopped at the report after the cancel
    assert all(recorded == pytest.approx(reported) for reported, recorded in seen)
    assert any(0 < recorded < 1 for _, recorded in seen)
    run = runs.get_run(ADMIN, run_id)
    assert run.status == "cancelled" and results_of(run_id) == []
    assert queue.revoked == [run_id]


def test_cancel_refuses_terminal_runs_and_unknown_ids(queue):
    run_id = submit(queue).run.id
    runs.execute_run(run_id)
    with pytest.raises(RunNotCancellable):
        runs.cancel_run(ADMIN, run_id, queue)
    with pytest.raises(RunNotFound):
        runs.cancel_run(ADMIN, uuid.uuid4(), queue)
    assert runs.execute_run(uuid.uuid4()) == ExecutionOutcome.GONE  # a message for no run


def test_list_runs_pages_newest_first_and_filters_by_status(queue):
    ids = [submit(queue).run.id for _ in range(5)]
    runs.execute_run(ids[0])
    page, total = runs.list_runs(ADMIN, None, limit=2, offset=0)
    assert total == 5 and [run.id for run in page] == ids[::-1][:2]
    done, total_done = runs.list_runs(ADMIN, RunStatus.SUCCEEDED, limit=10, offset=0)
    assert total_done == 1 and done[0].id == ids[0]


ALL_POLICIES = {**EXAMPLE, "workload": {"kind": "synthetic", "num_tasks": 500, "seed": 2}}


def test_a_run_keeps_every_metric_its_schedules_and_what_learning_policies_used(queue):
    from app.sim.policies import POLICY_NAMES

    run_id = submit(queue, {**ALL_POLICIES, "policies": list(POLICY_NAMES)}).run.id
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    rows = {row.policy: row for row in results_of(run_id)}
    assert set(rows) == set(POLICY_NAMES)
    assert rows["oracle"].gap_to_oracle == 0.0
    assert all(r.slr >= 1 and r.speedup > 0 and r.p95_flow_time >= 0 for r in rows.values())
    run = runs.get_run(ADMIN, run_id)
    assert run.model_version == "bootstrap-1" and run.rl_state_version is None
    devices, schedule = schedules.get_schedule(ADMIN, run_id, "heft")
    assert schedule.num_tasks == 500 and devices[0] == "cpu0" and len(devices) == 12
    with pytest.raises(ScheduleNotFound, match="it has schedules for"):
        schedules.get_schedule(ADMIN, run_id, "no-such-policy")


def test_rl_saves_what_it_learned_and_a_warm_start_resumes_from_it(queue):
    body = {**ALL_POLICIES, "policies": ["rl"]}
    first = submit(queue, body).run.id
    runs.execute_run(first)
    warm = submit(queue, {**body, "rl_warm_start": True}).run.id
    runs.execute_run(warm)
    assert runs.get_run(ADMIN, first).rl_state_version is None  # a fresh agent: reproducible
    assert runs.get_run(ADMIN, warm).rl_state_version == 1  # started from what `first` saved
    with session_scope() as session:
        latest = policy_states.latest(session, "rl")
        assert latest.version == 2 and latest.run_id == warm
        assert latest.state["steps"] == 2 * 500


def test_schedules_of_large_runs_are_not_kept(queue, monkeypatch):
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "schedule_max_tasks", 100)
    run_id = submit(queue, {**ALL_POLICIES, "policies": ["greedy"]}).run.id
    runs.execute_run(run_id)
    why = "its 500 tasks are more than the 100 whose per-task schedules are kept"
    with pytest.raises(ScheduleNotFound, match=why):
        schedules.get_schedule(ADMIN, run_id, "greedy")
    assert len(results_of(run_id)) == 1
    run = runs.get_run(ADMIN, run_id)
    assert run.num_tasks == 500 and not schedules.available_schedules(ADMIN, run_id)


def test_a_run_reports_each_phase_in_order_to_its_row_and_long_phases_more_than_once(
    queue, monkeypatch
):
    monkeypatch.setattr(get_settings(), "progress_interval_s", 0.0)  # every report written
    workload = {"kind": "synthetic", "num_tasks": 2 * PROGRESS_EVERY + 1, "seed": 2}
    policies = ["round_robin", "greedy", "heft"]
    run_id = submit(queue, {**ALL_POLICIES, "workload": workload, "policies": policies}).run.id
    reports = []

    def sink(progress, phase):  # called after the report's write: the row shows it
        run = runs.get_run(ADMIN, run_id)
        reports.append((progress, phase, run.progress, run.phase))

    assert runs.execute_run(run_id, sink) == ExecutionOutcome.SUCCEEDED
    assert all((p, phase) == (row_p, row_phase) for p, phase, row_p, row_phase in reports)
    phases = [phase for phase, _ in groupby(phase for _, phase, *_ in reports)]
    assert phases == [
        "building the workload",
        *(f"simulating {policy} ({i}/3)" for i, policy in enumerate(policies, start=1)),
        "computing metrics",
        *(f"computing metrics ({i}/3)" for i in (1, 2, 3)),
        "storing results",
    ]
    # each simulation in chunks of PROGRESS_EVERY decisions; no schedule packed (all three are
    # recomputed on read): storing is one phase report
    assert sum(phase == "simulating heft (3/3)" for _, phase, *_ in reports) >= 3
    assert sum(phase == "storing results" for _, phase, *_ in reports) == 1
    progress = [progress for progress, *_ in reports]
    assert progress == sorted(progress) and progress[0] >= 0 and progress[-1] < 1
    run = runs.get_run(ADMIN, run_id)
    assert run.phase is None and run.progress == 1.0 and run.num_tasks == workload["num_tasks"]


RANKED = {**ALL_POLICIES, "policies": ["round_robin", "greedy", "heft", "oracle"]}


@pytest.mark.parametrize("rank_by", ["energy", "makespan"])
def test_results_are_stored_ranked_by_the_runs_metric_and_read_best_first(queue, rank_by):
    run_id = submit(queue, {**RANKED, "rank_by": rank_by}).run.id
    assert runs.execute_run(run_id) == ExecutionOutcome.SUCCEEDED
    run, results = runs.get_results(ADMIN, run_id)
    assert run.rank_by == rank_by
    assert [r.rank for r in results] == [1, 2, 3, 4]
    values = [getattr(r, rank_by) for r in results]
    assert values == sorted(values)
    assert all(r.mean_slowdown >= 1 - 1e-9 and r.lower_bound > 0 for r in results)
    assert all(
        r.gap_to_bound == pytest.approx((r.makespan - r.lower_bound) / r.lower_bound)
        for r in results
    )


def test_the_default_rank_metric_is_recorded_on_the_run(queue):
    run_id = submit(queue, {**RANKED, "policies": ["greedy", "heft"]}).run.id
    runs.execute_run(run_id)
    run, results = runs.get_results(ADMIN, run_id)
    assert run.rank_by == "mean_flow_time"  # an online workload
    assert [r.mean_flow_time for r in results] == sorted(r.mean_flow_time for r in results)


def test_results_come_by_rank_then_makespan_with_unranked_results_last(queue):
    run_id = submit(queue).run.id
    row = {
        "mean_flow_time": 1.0, "energy": 1.0, "cost": 1.0, "mean_utilization": 0.5,
        "utilization": {}, "rank_by": "energy", "rank_value": 1.0,
    }  # fmt: skip
    with session_scope() as session:  # a run that succeeded, some results recorded unranked
        run_store.get_run(session, run_id).status = RunStatus.SUCCEEDED
        run_store.add_results(
            session,
            run_id,
            [
                {**row, "policy": "old_fast", "makespan": 1.0, "rank": None},
                {**row, "policy": "second", "makespan": 2.0, "rank": 2},
                {**row, "policy": "old_slow", "makespan": 9.0, "rank": None},
                {**row, "policy": "first", "makespan": 5.0, "rank": 1},
            ],
        )
    _, results = runs.get_results(ADMIN, run_id)
    assert [r.policy for r in results] == ["first", "second", "old_fast", "old_slow"]


def test_a_run_deleted_before_its_message_is_taken_is_a_quiet_outcome(queue, caplog):
    run_id = submit(queue).run.id
    runs.cancel_run(ADMIN, run_id, queue)
    runs.delete_run(ADMIN, run_id)
    with caplog.at_level(logging.INFO, logger="app.services.runs"):
        assert runs.execute_run(run_id) == ExecutionOutcome.GONE
    (record,) = [r for r in caplog.records if str(run_id) in r.getMessage()]
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "no longer exists" in record.getMessage()


def _save(start, learned, saved, release, failures, pids):
    """One run's rl save from `start` in its own transaction (its backend's pid in `pids`): sets
    `saved` once saved, commits once `release` is set; an exception goes to `failures`."""
    try:
        with session_scope() as session:
            pids.append(session.scalar(text("select pg_backend_pid()")))
            runs.save_learning(session, start, learned, None)
            saved.set()
            release.wait(60)
    except Exception as exc:
        failures.append(exc)


def _waits_on_a_lock(pid):
    with session_scope() as session:
        query = "select wait_event_type from pg_stat_activity where pid = :pid"
        return session.scalar(text(query), {"pid": pid}) == "Lock"


def _two_saves_at_once(start, learned):
    """Two runs' saves from `start`: the second commits (or waits to) while the first's save is
    uncommitted. Returns what they raised."""
    saved, release, now = threading.Event(), threading.Event(), threading.Event()
    failures, pids = [], []
    now.set()
    first = threading.Thread(target=_save, args=(start, learned[0], saved, release, failures, pids))
    first.start()
    wait_until(saved.is_set, 60, "the first save")
    second = threading.Thread(
        target=_save, args=(start, learned[1], threading.Event(), now, failures, pids)
    )
    second.start()
    wait_until(
        lambda: not second.is_alive() or (len(pids) == 2 and _waits_on_a_lock(pids[1])),
        60,
        "the second save committed or waiting",
    )
    release.set()
    first.join(60)
    second.join(60)
    return failures


def test_concurrent_rl_saves_from_one_start_take_turns_and_each_adds_its_learning(servers):
    state = {**Rl().state(), "steps": 1}
    with session_scope() as session:
        runs.save_learning(session, runs.RlStart(), state, None)
    expected_steps, increments = 1, iter(range(10, 100, 10))
    for _ in range(3):  # rounds: two runs that started from the same version save at once
        with session_scope() as session:
            newest = policy_states.latest(session, "rl")
            start = runs.RlStart(dict(newest.state), newest.version)
        learned = [{**start.state, "steps": start.state["steps"] + next(increments)} for _ in "ab"]
        expected_steps += sum(state["steps"] - start.state["steps"] for state in learned)
        assert _two_saves_at_once(start, learned) == []
    with session_scope() as session:
        versions = session.scalars(
            select(PolicyState.version).where(PolicyState.policy == "rl").order_by("version")
        ).all()
        newest = policy_states.latest(session, "rl")
    assert versions == list(range(1, 8))  # consecutive: no gap, no duplicate
    assert newest.state["steps"] == expected_steps  # every save's learning is in the newest
