"""Faults against real processes: killed workers, a restarted broker, a database outage, a crash
between commit and enqueue, poison input, time limits. After each: every run ends, exactly once
(one set of results, one set of training samples), with its attempts counted.

The workers and beat here run with recovery timings in seconds (RECOVERY) and time limits derived
from how long a run takes on this machine now (tests/timing.py); production uses the defaults
documented in the README's Guarantees section.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from sqlalchemy import func, select

from app.db.models import RunResult, TrainingSampleSet
from app.db.session import session_scope
from app.errors import TransientStoreError
from app.runspec import RunSpec
from app.services import runs, training
from tests.conftest import ADMIN, EXAMPLE_SPEC, TEST_API_KEY
from tests.fakes import RecordingQueue
from tests.processes import ProcfileProcess, Worker, broker_idle, wait_until
from tests.timing import SLOWDOWN, Limits, seconds_to_execute
from workers.queue import CeleryQueue

RECOVERY = {
    "HMS_UNACKED_RESTORE_INTERVAL_S": "1",
    "HMS_UNACKED_RESTORE_THROTTLE": "1",
    "HMS_SWEEP_INTERVAL_S": "1",
    "HMS_REQUEUE_UNSENT_AFTER_S": "2",
    "HMS_SAMPLES_PER_RUN": "100",
}
AUTH = {"X-API-Key": TEST_API_KEY}
#: About 2-3 s of simulation with progress all along: long enough to be killed mid-run.
CRASH_SPEC = {
    "workload": {"kind": "synthetic", "num_tasks": 500_000, "seed": 3},
    "cluster": {"cpus": 8, "gpus": 4},
    "policies": ["eft", "heft", "oracle"],
}


def submit(body: dict, queue=None) -> uuid.UUID:
    return runs.submit_run(ADMIN, RunSpec.model_validate(body), queue or CeleryQueue()).run.id


def wait_status(run_id: uuid.UUID, wanted: set[str], timeout_s: float = 60) -> None:
    wait_until(
        lambda: runs.get_run(ADMIN, run_id).status in wanted, timeout_s, f"run in {wanted}", 0.1
    )


def wait_running(run_id: uuid.UUID, timeout_s: float = 60) -> None:
    def partway() -> bool:
        run = runs.get_run(ADMIN, run_id)
        return run.status == "running" and run.progress > 0.1

    wait_until(partway, timeout_s, "the run partway through", every_s=0.05)


def counts(run_id: uuid.UUID) -> tuple[int, int]:
    """(result rows, training samples) stored for the run."""
    with session_scope() as session:
        results = session.scalar(select(func.count()).where(RunResult.run_id == run_id))
        samples = session.scalar(
            select(func.sum(TrainingSampleSet.count)).where(TrainingSampleSet.run_id == run_id)
        )
    return results or 0, samples or 0


def assert_finished_once(run_id: uuid.UUID, attempts: int) -> None:
    run = runs.get_run(ADMIN, run_id)
    assert run.status == "succeeded", run.error
    assert run.attempts == attempts
    assert counts(run_id) == (3, 100 * 2)  # one result per policy; 100 tasks x 2 device models


@pytest.fixture(scope="module")
def limits(servers) -> Limits:
    """Limits that a run of CRASH_SPEC, or a shorter one, reaches only if it gets SLOWDOWN times
    slower than it is now."""
    return Limits.above(SLOWDOWN * seconds_to_execute(CRASH_SPEC))


@pytest.fixture
def fresh(limits, clean_state):
    return clean_state


@pytest.fixture(scope="module")
def fast(limits) -> dict[str, str]:
    """The workers' and beat's environment: recovery in seconds, time limits from `limits`."""
    return {**RECOVERY, **limits.env()}


@pytest.fixture(scope="class")
def survivor(fast) -> Iterator[Worker]:
    """One worker for the faults it lives through (a start costs 9-25 s on 2 loaded cores): its
    pool process killed (it forks another), the broker restarted (it reconnects), a lost send,
    poison input. Each test reads only what it logged during the test."""
    worker = Worker(concurrency=1, env=fast)
    yield worker
    worker.stop()


class TestFaultsOneWorkerLivesThrough:
    """Each test has clean tables and queues (`fresh`); only the worker process carries on."""

    def test_a_killed_pool_process_is_redelivered_and_finishes_exactly_once(self, fresh, survivor):
        since = survivor.log_end()
        run_id = submit(CRASH_SPEC)
        wait_running(run_id)
        (child,) = survivor.pool_pids()
        os.kill(child, signal.SIGKILL)
        wait_status(run_id, {"succeeded", "failed"})
        assert_finished_once(run_id, attempts=2)
        assert survivor.alive() and "WorkerLostError" in survivor.log(since)

    def test_a_broker_restart_loses_no_queued_or_running_run(
        self, fresh, fast, limits, api, survivor
    ):
        since = survivor.log_end()
        beat = ProcfileProcess("beat", fast)
        try:
            running = submit(CRASH_SPEC)
            queued = [
                submit({**EXAMPLE_SPEC, "policies": ["greedy", "heft", "oracle"], "seed": s})
                for s in range(4)
            ]
            wait_running(running)
            fresh.valkey.stop()  # a clean shutdown: the append-only file has every message
            outage = httpx.post(
                f"{api.url}/api/v1/runs", json=EXAMPLE_SPEC, headers=AUTH, timeout=30
            )
            assert outage.status_code == 503
            assert outage.json()["detail"]["dependency"] == "broker"
            assert "recorded" in outage.json()["detail"]["message"]
            wait_until(
                lambda: "Connection to broker lost" in survivor.log(since),
                60,
                "the worker to notice",
            )
            fresh.valkey.start()
            during = runs.list_runs(ADMIN, None, 100, 0)[0]
            submitted_during_outage = next(r.id for r in during if r.id not in {running, *queued})
            for run_id in (running, *queued, submitted_during_outage):
                wait_status(run_id, {"succeeded", "failed"}, timeout_s=limits.visibility_s + 90)
            for run_id in (running, *queued):
                assert runs.get_run(ADMIN, run_id).status == "succeeded"
                assert counts(run_id) == (3, 200)
            # Sent by the recovery sweep once the broker was back.
            assert runs.get_run(ADMIN, submitted_during_outage).status == "succeeded"
        finally:
            beat.stop()
            if not fresh.valkey.is_running():
                fresh.valkey.start()

    def test_a_crash_between_commit_and_enqueue_is_swept_up(self, fresh, fast, survivor):
        since = survivor.log_end()
        beat = ProcfileProcess("beat", fast)
        try:
            with pytest.raises(TransientStoreError):
                submit(EXAMPLE_SPEC, RecordingQueue(broker_down=True))
            (orphan,) = runs.list_runs(ADMIN, None, 10, 0)[0]
            assert orphan.status == "queued" and orphan.enqueued_at is None
            with pytest.raises(TransientStoreError):
                training.request_retrain(ADMIN, RecordingQueue(broker_down=True))
            (job,) = training.list_jobs(ADMIN, 10, 0)[0]
            wait_status(orphan.id, {"succeeded", "failed"}, timeout_s=60)
            assert runs.get_run(ADMIN, orphan.id).status == "succeeded", runs.get_run(
                ADMIN, orphan.id
            ).error
            assert (
                runs.get_run(ADMIN, orphan.id).status == "succeeded"
                and runs.get_run(ADMIN, orphan.id).attempts == 1
            )
            wait_until(
                lambda: training.get_job(ADMIN, job.id).status != "queued",
                60,
                "the retrain to be swept",
            )
            wait_until(
                lambda: training.get_job(ADMIN, job.id).status == "skipped",
                60,
                "the retrain to end",
            )
            assert "recovery sweep re-sent" in survivor.log(since)
        finally:
            beat.stop()

    def test_poison_input_fails_once_with_a_readable_error(self, fresh, survivor):
        since = survivor.log_end()
        tiny_gpu = {**EXAMPLE_SPEC, "cluster": {"cpus": 0, "gpus": 1, "gpu": {"memory": 1}}}
        run_id = submit(tiny_gpu)  # valid JSON, but no task fits the only device
        wait_status(run_id, {"succeeded", "failed"})
        run = runs.get_run(ADMIN, run_id)
        assert run.status == "failed" and run.attempts == 1
        assert run.error.startswith("invalid spec:") and "fit on no device" in run.error
        assert counts(run_id) == (0, 0)
        assert "Retry in" not in survivor.log(since)


def test_a_killed_worker_is_redelivered_to_another_after_the_visibility_timeout(
    fresh, fast, limits
):
    first = Worker(concurrency=1, env=fast)
    run_id = submit(CRASH_SPEC)
    wait_running(run_id)
    first.kill()  # the whole worker, main process included: nothing acks or rejects
    killed_at = time.monotonic()
    second = Worker(concurrency=1, env=fast)
    try:
        # The message comes back after the visibility timeout, and the second worker (which may
        # still be starting) executes the run within its hard limit; 60 s more for a busy machine.
        # (visibility + 60 s once ran out under make test-busy, with no log to say where.)
        timeout_s = limits.visibility_s + limits.hard_s + 60
        try:
            wait_status(run_id, {"succeeded", "failed"}, timeout_s=timeout_s)
        except TimeoutError as exc:
            run = runs.get_run(ADMIN, run_id)
            raise AssertionError(
                f"run {run.status}, attempts {run.attempts}; the second worker's log:\n"
                f"{second.log()[-4000:]}"
            ) from exc
        print(f"\nredelivered and finished {time.monotonic() - killed_at:.1f} s after the kill")
        assert_finished_once(run_id, attempts=2)
    finally:
        second.stop()


def test_a_database_outage_backs_off_then_succeeds_and_the_api_answers_503(fresh, fast, api):
    run_id = submit({**EXAMPLE_SPEC, "policies": ["greedy", "heft", "oracle"]})
    fresh.postgres.stop()
    worker = Worker(concurrency=1, env=fast)
    try:
        listing = httpx.get(f"{api.url}/api/v1/runs", headers=AUTH, timeout=30)
        assert listing.status_code == 503 and listing.headers["Retry-After"]
        assert listing.json()["detail"]["dependency"] == "database"
        ready = httpx.get(f"{api.url}/health/ready", timeout=30)
        assert ready.status_code == 503
        assert (
            ready.json()["checks"]["database"].startswith("down")
            and ready.json()["checks"]["broker"] == "ok"
        )
        wait_until(lambda: worker.log().count("Retry in") >= 2, 60, "two backed-off retries")
        fresh.postgres.start()
        wait_status(run_id, {"succeeded", "failed"}, timeout_s=90)
        run = runs.get_run(ADMIN, run_id)
        assert run.status == "succeeded" and run.attempts == 1  # no attempt got in while down
        assert counts(run_id) == (3, 200)
        assert httpx.get(f"{api.url}/health/ready", timeout=30).status_code == 200
    finally:
        worker.stop()
        if not fresh.postgres.is_running():
            fresh.postgres.start()


def test_a_run_past_its_time_limits_is_failed_and_not_redelivered(fresh):
    # 1/SLOWDOWN of what CRASH_SPEC takes here now: it and the larger silent run go well past.
    short = Limits.below(seconds_to_execute(CRASH_SPEC))
    worker = Worker(concurrency=1, env={**RECOVERY, **short.env()})
    try:
        stepping = submit(CRASH_SPEC)  # reports progress: stops itself at its own limit
        wait_status(stepping, {"succeeded", "failed"})
        run = runs.get_run(ADMIN, stepping)
        assert (run.status, run.error) == (
            "failed",
            f"exceeded its time limit of {short.run_s:g} s",
        )
        # Predicting 1M tasks' times is one long call with no progress report in between:
        # Celery's limits stop it instead (the hard one kills the pool process).
        million = {**CRASH_SPEC["workload"], "num_tasks": 1_000_000}
        silent = submit({**CRASH_SPEC, "workload": million, "policies": ["learned"]})
        wait_status(silent, {"succeeded", "failed"}, timeout_s=60)
        # Past the visibility timeout and the next look for unacknowledged messages, and with
        # nothing queued or handed out: a requeued message would have come back and been handled.
        # Both messages were handed out before the silent run started (one at a time, in order),
        # so counting from its start waits at least that long after either was handed out; the
        # hard limit already spent most of it.
        started = runs.get_run(ADMIN, silent).started_at
        assert started is not None
        restore_s = 2 * int(RECOVERY["HMS_UNACKED_RESTORE_INTERVAL_S"])
        time.sleep(max(0.0, started.timestamp() + short.visibility_s + restore_s - time.time()))
        wait_until(broker_idle, 60, "every message handled")
        for run_id in (stepping, silent):
            run = runs.get_run(ADMIN, run_id)
            assert run.status == "failed" and run.attempts == 1, (
                run.status,
                run.attempts,
                run.error,
            )
            assert "time limit" in run.error
            assert counts(run_id) == (0, 0)
        print(f"\nthe silent run: {runs.get_run(ADMIN, silent).error}")
    finally:
        worker.stop()


def test_a_run_whose_worker_keeps_dying_is_failed_after_max_attempts(fresh, fast):
    worker = Worker(concurrency=1, env={**fast, "HMS_MAX_RUN_ATTEMPTS": "2"})
    try:
        run_id = submit(CRASH_SPEC)
        for attempt in (1, 2):

            def partway(attempt: int = attempt) -> bool:
                run = runs.get_run(ADMIN, run_id)
                return run.attempts == attempt and run.progress > 0.1

            wait_until(partway, 60, f"attempt {attempt} partway", 0.05)
            os.kill(worker.pool_pids()[0], signal.SIGKILL)
        wait_status(run_id, {"succeeded", "failed"})
        run = runs.get_run(ADMIN, run_id)
        assert run.status == "failed" and run.attempts == 2
        assert run.error == "gave up after 2 attempts: the worker running it was lost each time"
    finally:
        worker.stop()


def test_the_broker_keeps_messages_on_disk(fresh):
    """The embedded Valkey runs with append-only persistence (the broker-restart test relies on
    it; docker-compose configures the same)."""
    client = redis.Redis.from_url(fresh.redis_url)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
