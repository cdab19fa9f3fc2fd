"""The recovery sweep and the hard-time-limit hook against the real database (no worker)."""

import uuid
from datetime import timedelta

import pytest
from celery.exceptions import TimeLimitExceeded
from sqlalchemy import update

from app.db.models import Run, TrainingJob, utcnow
from app.db.session import session_scope
from app.runspec import RunSpec
from app.services import recovery, runs, training
from app.settings import get_settings
from tests.conftest import ADMIN, EXAMPLE_SPEC
from tests.fakes import RecordingQueue
from workers.queue import CeleryQueue


def new_run(queue) -> uuid.UUID:
    try:
        return runs.submit_run(ADMIN, RunSpec.model_validate(EXAMPLE_SPEC), queue).run.id
    except Exception:
        return runs.list_runs(ADMIN, None, 1, 0)[0][0].id


def age(model, row_id, **ago):
    """Move the row's timestamps back in time."""
    when = utcnow() - timedelta(**ago)
    with session_scope() as session:
        session.execute(
            update(model).where(model.id == row_id).values(created_at=when, updated_at=when)
        )


def test_the_sweep_resends_unsent_and_silent_work_and_leaves_the_rest(clean_state):
    unsent = new_run(RecordingQueue(broker_down=True))  # committed, never sent
    waiting = new_run(RecordingQueue())  # sent, waiting in the queue
    silent = new_run(RecordingQueue())
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == silent).values(status="running", attempts=1))
    fresh_unsent = new_run(RecordingQueue(broker_down=True))
    for run_id in (unsent, waiting, silent):
        age(Run, run_id, hours=1)  # older than every threshold but the lost-message one
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == waiting).values(enqueued_at=utcnow()))
    job = training.request_retrain(ADMIN, RecordingQueue())
    age(TrainingJob, job.id, hours=1)
    with session_scope() as session:
        session.execute(
            update(TrainingJob).where(TrainingJob.id == job.id).values(status="running")
        )
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job.id)
            .values(updated_at=utcnow() - timedelta(hours=1))
        )

    queue = RecordingQueue()
    report = recovery.sweep(queue)
    assert set(queue.runs) == {unsent, silent}
    assert fresh_unsent not in queue.runs and waiting not in queue.runs
    assert queue.retrains == [job.id]
    assert sorted(report.runs) == sorted(map(str, (unsent, silent)))
    assert runs.get_run(ADMIN, unsent).enqueued_at is not None
    # Sent again just now: the next sweep leaves them alone.
    assert recovery.sweep(RecordingQueue()).runs == []


def test_a_run_killed_at_the_hard_time_limit_is_recorded_as_failed(clean_state):
    from workers.signals import _record_hard_time_limit
    from workers.tasks import run_simulation

    run_id = new_run(RecordingQueue())
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="running", attempts=1))
    task = run_simulation
    _record_hard_time_limit(sender=task, exception=TimeLimitExceeded(10), args=[str(run_id)])
    run = runs.get_run(ADMIN, run_id)
    assert run.status == "failed" and run.error.startswith("killed at the hard time limit")
    # Other failures are left to the task itself.
    other = new_run(RecordingQueue())
    _record_hard_time_limit(sender=task, exception=ValueError("x"), args=[str(other)])
    assert runs.get_run(ADMIN, other).status == "queued"


@pytest.mark.parametrize("ending", ["hard time limit", "memory error"])
def test_a_message_of_several_runs_that_died_fails_its_running_run_sends_the_rest(
    clean_state, ending
):
    """Its message is acknowledged (task_acks_on_failure, task_acks_on_timeout), so the runs it
    had not started are sent again to the broker, one message each."""
    from workers.signals import _record_hard_time_limit, _record_out_of_memory
    from workers.tasks import run_simulations

    executing, waiting = new_run(RecordingQueue()), new_run(RecordingQueue())
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == executing).values(status="running"))
    held = CeleryQueue().messages_held()
    args = [[str(executing), str(waiting)], 5]
    if ending == "hard time limit":
        _record_hard_time_limit(sender=run_simulations, exception=TimeLimitExceeded(9), args=args)
    else:
        _record_out_of_memory(sender=run_simulations, exception=MemoryError(), args=args)
    failed = runs.get_run(ADMIN, executing)
    assert failed.status == "failed"
    assert (
        "hard time limit" if ending == "hard time limit" else "MB a run may use"
    ) in failed.error
    assert runs.get_run(ADMIN, waiting).status == "queued"
    assert CeleryQueue().messages_held() == held + 1  # the waiting run, sent again


def test_a_run_whose_memory_error_escaped_the_service_is_recorded_as_failed(clean_state):
    from workers.signals import _record_out_of_memory
    from workers.tasks import run_simulation

    run_id = new_run(RecordingQueue())
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="running", attempts=1))
    _record_out_of_memory(sender=run_simulation, exception=MemoryError(), args=[str(run_id)])
    run = runs.get_run(ADMIN, run_id)
    budget = get_settings().run_memory_budget_mb
    assert (run.status, run.error) == ("failed", f"needed more than the {budget} MB a run may use")
    other = new_run(RecordingQueue())
    _record_out_of_memory(sender=run_simulation, exception=ValueError("x"), args=[str(other)])
    assert runs.get_run(ADMIN, other).status == "queued"


def test_runs_queued_long_are_sent_again_only_while_the_broker_holds_fewer_messages(clean_state):
    """A deep queue keeps runs queued for hours (a study of 100,000 runs): while the broker holds
    a message for each run waiting for one, the sweep leaves them; once it holds fewer (a broker
    that lost messages), it sends the long-queued ones again."""
    waiting = [new_run(RecordingQueue()) for _ in range(3)]
    long_ago = utcnow() - timedelta(seconds=get_settings().requeue_queued_after_s + 60)
    with session_scope() as session:
        session.execute(update(Run).where(Run.id.in_(waiting)).values(enqueued_at=long_ago))
    holding = RecordingQueue()
    holding.held = 3
    assert recovery.sweep(holding).runs == [] and holding.runs == []
    lost_one = RecordingQueue()
    lost_one.held = 2
    assert sorted(recovery.sweep(lost_one).runs) == sorted(map(str, waiting))


def test_the_broker_counts_the_messages_it_holds_in_every_priority_and_queue(clean_state):
    queue = CeleryQueue()
    before = queue.messages_held()
    for priority in (0, 5, 9):
        queue.enqueue_run(uuid.uuid4(), priority)
    queue.enqueue_retrain(uuid.uuid4())
    assert queue.messages_held() == before + 4


def test_a_broker_that_cannot_be_reached_counts_as_no_message_lost(clean_state):
    """Counting the broker's messages fails when it is down: the sweep then re-sends no
    long-queued run (it could not) and goes on with what needs only the database."""
    waiting = new_run(RecordingQueue())
    long_ago = utcnow() - timedelta(seconds=get_settings().requeue_queued_after_s + 60)
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == waiting).values(enqueued_at=long_ago))
    assert not recovery.messages_lost(RecordingQueue(broker_down=True))
    assert recovery.messages_lost(RecordingQueue())  # reachable, holding none of them


def test_messages_a_task_sends_are_not_kept_as_its_children(clean_state):
    """A fan-out sends 100,000 messages from inside a task: none is kept in the task's request
    (Celery's `children`, which the task's stored result would then list)."""
    from celery._state import _task_stack

    from workers.tasks import fan_out_study as fan_out

    fan_out.push_request(id=str(uuid.uuid4()), children=[], called_directly=False)
    _task_stack.push(fan_out)
    try:
        CeleryQueue().enqueue_run_groups([[uuid.uuid4() for _ in range(3)], [uuid.uuid4()]], 5)
        assert fan_out.request.children == []
    finally:
        _task_stack.pop()
        fan_out.pop_request()
