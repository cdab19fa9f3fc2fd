"""What the Celery queue sends, recorded instead of sent (no broker)."""

import uuid
from contextlib import nullcontext

import pytest
from kombu.exceptions import OperationalError

import celeryconfig
from app.errors import TransientStoreError
from workers import queue, task_names, tasks
from workers.celery_app import app
from workers.queue import CeleryQueue, shared_task_id


@pytest.fixture
def sent(monkeypatch):
    messages = []

    def send_task(name, **options):
        messages.append((name, options))

    monkeypatch.setattr(queue._publisher, "send_task", send_task)
    return messages


def test_each_message_names_its_task_with_its_queue_id_and_priority(sent):
    run_id, study_id, job_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    CeleryQueue().enqueue_run(run_id, 9)
    CeleryQueue().enqueue_fan_out(study_id)
    CeleryQueue().enqueue_retrain(job_id)
    assert [
        (name, options["args"], options["task_id"], options["queue"], options.get("priority"))
        for name, options in sent
    ] == [
        (tasks.run_simulation.name, [str(run_id)], str(run_id), "simulations", 0),
        (tasks.fan_out_study.name, [str(study_id)], None, "simulations", 0),
        (tasks.retrain_model.name, [str(job_id)], str(job_id), "training", None),
    ]
    assert "priority" not in sent[2][1]  # the default (celeryconfig.task_default_priority)
    assert all(options["retry"] and options["producer"] is None for _, options in sent)


def test_groups_of_runs_share_one_producer_a_message_each(sent, monkeypatch):
    """A group of several runs is one message of run_simulations (its runs and the API's
    priority); a group of one is an ordinary run's message."""
    producer = object()
    monkeypatch.setattr(queue._publisher, "producer_or_acquire", lambda: nullcontext(producer))
    run_ids = [uuid.uuid4() for _ in range(4)]
    CeleryQueue().enqueue_run_groups([run_ids[:3], run_ids[3:]], 2)
    shared = shared_task_id(run_ids[:3])
    assert [(name, options["args"], options["task_id"]) for name, options in sent] == [
        (tasks.run_simulations.name, [[str(r) for r in run_ids[:3]], 2], shared),
        (tasks.run_simulation.name, [str(run_ids[3])], str(run_ids[3])),
    ]
    assert all(options["producer"] is producer and options["priority"] == 7 for _, options in sent)


def test_an_unreachable_broker_is_a_transient_error(monkeypatch):
    def refuse(name, **options):
        raise OperationalError("connection refused")

    monkeypatch.setattr(queue._publisher, "send_task", refuse)
    with pytest.raises(TransientStoreError, match="broker unavailable: connection refused"):
        CeleryQueue().enqueue_run(uuid.uuid4(), 5)
    with pytest.raises(TransientStoreError, match="broker unavailable"):
        CeleryQueue().enqueue_fan_out(uuid.uuid4())


def test_every_task_has_its_name_from_the_registry_and_a_route():
    registry = {
        value for key, value in vars(task_names).items() if key.isupper() and isinstance(value, str)
    }
    declared = {name for name in app.tasks if name.startswith("hms.")}
    assert declared == registry
    assert registry <= set(celeryconfig.task_routes)


def test_progress_that_cannot_reach_the_broker_is_not_sent_again_for_a_while(monkeypatch):
    from redis.exceptions import TimeoutError as RedisTimeout

    class CutOffTask:
        request = type("Request", (), {"id": "r"})
        calls = 0

        def update_state(self, **_):
            CutOffTask.calls += 1
            raise RedisTimeout("no answer")

    now = [100.0]
    monkeypatch.setattr(tasks.time, "monotonic", lambda: now[0])
    report = tasks._CeleryProgress(CutOffTask())
    report(0.1, "simulating")
    report(0.2, "simulating")
    assert CutOffTask.calls == 1  # the second report did not wait on the dead connection
    now[0] += tasks._settings.redis_health_check_s
    report(0.3, "simulating")
    assert CutOffTask.calls == 2
