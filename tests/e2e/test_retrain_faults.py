"""Faults in retraining jobs against real processes: a retrain shares the runs' lifecycle
(app/services/lifecycle.py), so a retrain whose worker keeps dying is failed after the attempt cap
instead of being redelivered forever."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
import redis

from app.runspec import RunSpec
from app.services import runs, training
from tests.conftest import ADMIN, EXAMPLE_SPEC
from tests.processes import Worker, wait_until

#: Enough samples from one run for a retrain (1,000 tasks sampled x 2 device models), and so many
#: boosting iterations that the retrain is still fitting whenever it is killed.
ENDLESS_RETRAIN = {
    "HMS_MAX_ATTEMPTS": "2",
    "HMS_SAMPLES_PER_RUN": "1000",
    "HMS_MIN_TRAINING_SAMPLES": "1000",
    "HMS_TRAINING_MAX_ITER": "1000000",
}


def celery_queue():
    from workers.queue import CeleryQueue

    return CeleryQueue()


def messages_of(broker: redis.Redis, task_id: uuid.UUID) -> list[bytes]:
    """The broker's messages naming the task: waiting in the training queue or delivered and
    not acknowledged (kombu's `unacked` hash, which a worker would restore)."""
    waiting = [
        message
        for key in broker.scan_iter(match="training*")
        if broker.type(key) == b"list"
        for message in broker.lrange(key, 0, -1)
    ]
    unacked = list(broker.hvals("unacked"))
    return [message for message in waiting + unacked if str(task_id).encode() in message]


@pytest.fixture
def worker(clean_state):
    process = Worker(concurrency=1, env=ENDLESS_RETRAIN)
    yield process
    process.stop()


def test_a_retrain_whose_worker_keeps_dying_is_failed_after_max_attempts(clean_state, worker):
    run_id = runs.submit_run(ADMIN, RunSpec.model_validate(EXAMPLE_SPEC), celery_queue()).run.id
    wait_until(lambda: runs.get_run(ADMIN, run_id).status == "succeeded", 120, "the samples' run")
    job_id = training.request_retrain(ADMIN, celery_queue()).id

    for attempt in (1, 2):

        def claimed(attempt: int = attempt) -> bool:
            job = training.get_job(ADMIN, job_id)
            return job.status == "running" and job.attempts == attempt

        wait_until(claimed, 120, f"attempt {attempt} of the retrain running", every_s=0.05)
        (pool_process,) = worker.pool_pids()
        os.kill(pool_process, signal.SIGKILL)

    wait_until(
        lambda: training.get_job(ADMIN, job_id).status != "running", 120, "the retrain to end"
    )
    job = training.get_job(ADMIN, job_id)
    print(f"\nretrain ended {job.status} after {job.attempts} attempts: {job.message}")
    assert (job.status, job.attempts) == ("failed", 2)
    assert job.message == "gave up after 2 attempts: the worker running it was lost each time"
    assert job.model_version is None and job.finished_at is not None

    # The third delivery failed it and was acknowledged: no message is left to deliver again.
    wait_until(
        lambda: f"hms.retrain_model[{job_id}] succeeded" in worker.log(),
        60,
        "the third delivery to be acknowledged",
    )
    assert messages_of(redis.Redis.from_url(clean_state.redis_url), job_id) == []
    assert worker.alive() and worker.log().count("WorkerLostError") >= 2
    assert training.get_job(ADMIN, job_id).attempts == 2
