"""The learning loop against the real database: samples from runs, retraining, promotion,
rejection, rollback, one job per schedule slot. No worker: services are called in-process."""

import threading
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from api.main import app
from app.db import packed
from app.db import training as store
from app.db.models import TrainingJob, TrainingSampleSet
from app.db.session import session_scope
from app.ml.training import FitParams, fit, holdout_mask, samples_from_run
from app.runspec import RunSpec
from app.services import runs, training
from app.settings import get_settings
from app.sim.experiment import run_experiment
from tests.conftest import ADMIN, EXAMPLE_SPEC, TEAM_A_KEY, TEST_API_KEY
from tests.fakes import RecordingQueue
from tests.unit.sim.conftest import synthetic_problem

AUTH = {"X-API-Key": TEST_API_KEY}
FAMILY = {**EXAMPLE_SPEC, "policies": ["greedy", "oracle", "learned"]}


@pytest.fixture
def small_training(monkeypatch):
    settings = get_settings()
    monkeypatch.setattr(settings, "samples_per_run", 400)
    monkeypatch.setattr(settings, "min_training_samples", 1000)
    monkeypatch.setattr(settings, "training_max_iter", 60)
    return settings


def run_family(count, seed=0):
    ids = []
    for k in range(count):
        body = {**FAMILY, "workload": {**FAMILY["workload"], "seed": seed + k}}
        run_id = runs.submit_run(ADMIN, RunSpec.model_validate(body), RecordingQueue()).run.id
        runs.execute_run(run_id)
        ids.append(run_id)
    return ids


def sample_count():
    with session_scope() as session:
        return store.sample_count(session)


def retrain():
    """A manual retrain, executed here; returns the finished job."""
    job = training.request_retrain(ADMIN, RecordingQueue())
    training.execute_retrain(job.id)
    return training.get_job(ADMIN, job.id)


def test_each_run_adds_samples_once_even_if_redelivered(small_training):
    (run_id,) = run_family(1)
    assert sample_count() == 400 * 2  # 400 tasks x (CPU model, GPU model)
    assert runs.execute_run(run_id).value == "skipped"
    assert sample_count() == 800
    with session_scope() as session:
        batch = store.latest_samples(session, 10_000)
    assert np.isfinite(batch.oracle_share).any()  # oracle ran: its splits are recorded


def test_stored_samples_read_back_bit_for_bit_beside_a_set_stored_sample_by_sample():
    problem = synthetic_problem(300, seed=4, cpus=4, gpus=2)
    made = samples_from_run(
        problem, run_experiment(problem, ["oracle"], 0), 120, np.random.default_rng(1)
    )
    expected = made.samples()
    (run_id,) = run_family(1)
    with session_scope() as session:
        session.execute(delete(TrainingSampleSet))  # the run's own
        # A set as written before features were stored per task and device model.
        packed.insert_set(
            session,
            "training_sample_sets",
            store.draw_sample_ids(session, expected.count),
            expected.count,
            {
                "run_id": str(run_id),
                "features": packed.pack(expected.features[::-1], packed.FLOAT64),
                "device_kind": packed.pack(expected.device_kind[::-1], packed.INT16),
                "seconds": packed.pack(expected.seconds[::-1], packed.FLOAT64),
                "oracle_share": packed.pack(expected.oracle_share[::-1], packed.FLOAT64),
            },
        )
        store.add_samples(session, run_id, made)
    with session_scope() as session:
        stored = store.latest_samples(session, 10_000)
        sizes = session.execute(
            select(
                func.length(TrainingSampleSet.features),
                func.length(TrainingSampleSet.task_features),
                func.length(TrainingSampleSet.device_features),
            ).order_by(TrainingSampleSet.first_id)
        ).all()
    # 120 tasks x 2 device models: 240 x 10 features, against 120 x 5 and 2 x 5.
    assert [tuple(row) for row in sizes] == [(240 * 10 * 8, None, None), (None, 120 * 5 * 8, 80)]
    n = expected.count
    for name in ("features", "device_kind", "seconds", "oracle_share"):
        column = getattr(stored, name)
        assert column[:n].tobytes() == getattr(expected, name)[::-1].tobytes(), name
        assert column[n:].tobytes() == getattr(expected, name).tobytes(), name


def test_a_retrain_with_too_little_data_is_skipped_not_failed(small_training):
    run_family(1)
    job = retrain()
    assert (job.status, job.message) == ("skipped", "skipped: 800 samples < minimum 1000")
    assert training.list_versions() == []


def test_retrain_registers_promotes_and_learned_then_uses_the_new_version(small_training):
    first = run_family(2)
    assert runs.get_run(ADMIN, first[0]).model_version == "bootstrap-1"
    job = retrain()
    assert job.status == "succeeded" and job.progress == 1.0 and job.model_version == 1
    (v1,) = training.list_versions()
    assert (v1.status, v1.is_active, v1.sample_count) == ("promoted", True, 1600)
    assert v1.holdout_count == pytest.approx(1600 / 5, abs=2)
    assert v1.metrics["candidate"]["ln_seconds"]["mae"] < 0.3
    assert v1.metrics["active_on_same_holdout"] is None and "no active model" in v1.reason
    assert len(v1.artifact_digest) == 64 and v1.artifact_format == "skops"
    (after,) = run_family(1, seed=10)
    assert runs.get_run(ADMIN, after).model_version == "v1"


def test_a_worse_model_is_rejected_and_the_active_one_stays(small_training):
    run_family(3)
    retrain()
    with session_scope() as session:
        batch = store.latest_samples(session, 100_000)
    holdout = holdout_mask(batch.ids)
    train = batch.subset(~holdout)
    shuffled = type(train)(
        train.features, train.device_kind, np.random.default_rng(0).permutation(train.seconds),
        train.oracle_share, train.ids,
    )  # fmt: skip
    outcome = training.register(
        None, fit(shuffled, FitParams(max_iter=60)), FitParams(max_iter=60), batch, holdout, 1.0
    )
    assert outcome.model_version == 2 and "rejected" in outcome.message
    v2 = training.get_version(2)
    assert v2.status == "rejected" and not v2.is_active
    assert ">= active v1's" in v2.reason
    assert (
        v2.metrics["candidate"]["ln_seconds"]["mae"]
        > v2.metrics["active_on_same_holdout"]["ln_seconds"]["mae"]
    )
    assert training.get_version(1).is_active


def test_a_retrain_that_ended_while_it_fitted_registers_no_version(small_training, monkeypatch):
    """Its time limit failed it meanwhile (or another delivery finished it): the late estimator
    is not stored, and the job keeps the end it was given."""
    run_family(3)
    job = training.request_retrain(ADMIN, RecordingQueue())
    real_fit = training.fit

    def failed_meanwhile(*args, **kwargs):
        estimator = real_fit(*args, **kwargs)
        training.fail_job(job.id, "killed at the hard time limit of 960 s")
        return estimator

    monkeypatch.setattr(training, "fit", failed_meanwhile)
    outcome = training.execute_retrain(job.id)
    assert (outcome.status, outcome.message) == ("skipped", "ended while it ran")
    assert training.list_versions() == []
    ended = training.get_job(ADMIN, job.id)
    assert (ended.status, ended.message) == ("failed", "killed at the hard time limit of 960 s")
    assert ended.model_version is None


def test_rollback_activates_any_registered_version_through_the_api(small_training):
    run_family(3)
    retrain()
    retrain()  # v2: promoted or rejected, either way registered
    with TestClient(app) as client:
        assert client.post("/api/v1/models/2/activate").status_code == 401
        assert client.post("/api/v1/models/9/activate", headers=AUTH).status_code == 404
        response = client.post("/api/v1/models/2/activate", headers=AUTH)
        assert response.status_code == 200 and response.json()["is_active"]
        listed = client.get("/api/v1/models", headers=AUTH).json()
        assert [(m["version"], m["is_active"]) for m in listed] == [(2, True), (1, False)]
        assert client.post("/api/v1/models/1/activate", headers=AUTH).json()["is_active"]
        assert client.get("/api/v1/models/2", headers=AUTH).json()["is_active"] is False
        tenant = {"X-API-Key": TEAM_A_KEY}  # reads the shared model, may not change it
        assert client.get("/api/v1/models", headers=tenant).status_code == 200
        refused = client.post("/api/v1/models/2/activate", headers=tenant)
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]


def test_the_retrain_endpoint_queues_a_job_whose_progress_is_readable(small_training):
    queue = RecordingQueue()
    from api.deps import get_queue

    app.dependency_overrides[get_queue] = lambda: queue
    try:
        with TestClient(app) as client:
            assert client.post("/api/v1/models/retrain").status_code == 401
            response = client.post("/api/v1/models/retrain", headers=AUTH)
            assert response.status_code == 202
            job = response.json()
            assert job["status"] == "queued" and job["trigger"] == "manual"
            assert queue.retrains == [uuid.UUID(job["id"])]
            assert job["tenant"] == "tests"
            location = response.headers["Location"]
            assert client.get(location, headers=AUTH).json()["id"] == job["id"]
            assert client.get("/api/v1/models/retrains", headers=AUTH).json()["total"] == 1
            missing = client.get(f"/api/v1/models/retrains/{uuid.uuid4()}", headers=AUTH)
            assert missing.status_code == 404
            tenant = {"X-API-Key": TEAM_A_KEY}  # not an admin: may not retrain, sees no job
            assert client.post("/api/v1/models/retrain", headers=tenant).status_code == 403
            assert client.get("/api/v1/models/retrains", headers=tenant).json()["total"] == 0
            assert client.get(location, headers=tenant).status_code == 404
    finally:
        app.dependency_overrides.clear()


def test_one_schedule_slot_gets_one_job_even_when_fired_concurrently():
    claims = []

    def fire():
        claims.append(training.claim_slot("nightly", "nightly:2026-11-27T02:00Z"))

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(claim is not None for claim in claims) == 1
    assert training.list_jobs(ADMIN, 10, 0)[1] == 1


def test_automatic_retraining_is_due_every_n_new_samples(small_training, monkeypatch):
    assert training.due_auto_slot() is None  # off by default
    monkeypatch.setattr(small_training, "auto_retrain_samples", 500)
    run_family(1)  # 800 samples
    slot = training.due_auto_slot()
    assert slot is not None and slot.startswith("auto:")
    assert training.claim_slot("auto", slot) is not None
    assert training.due_auto_slot() is None  # that threshold is taken


def test_a_retrain_before_any_run_is_skipped_with_zero_samples():
    job = retrain()
    assert (job.status, job.message) == (
        "skipped",
        f"skipped: 0 samples < minimum {get_settings().min_training_samples}",
    )


def test_a_retrain_whose_worker_was_lost_max_attempts_times_is_failed_on_claim(monkeypatch):
    monkeypatch.setattr(get_settings(), "max_attempts", 2)
    job = training.request_retrain(ADMIN, RecordingQueue())
    with session_scope() as session:  # two claims, each worker lost: left running
        session.execute(
            update(TrainingJob).where(TrainingJob.id == job.id).values(status="running", attempts=2)
        )
    outcome = training.execute_retrain(job.id)  # the third delivery
    assert outcome.status == "failed"
    failed = training.get_job(ADMIN, job.id)
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert failed.message == "gave up after 2 attempts: the worker running it was lost each time"
    assert failed.finished_at is not None
    assert training.execute_retrain(job.id).status == "skipped"  # a later one does nothing
    assert training.get_job(ADMIN, job.id).attempts == 2


def test_a_late_failure_report_does_not_overwrite_how_a_retrain_ended():
    job = retrain()
    assert job.status == "skipped"
    training.fail_job(job.id, "killed at the hard time limit of 960 s")
    assert training.get_job(ADMIN, job.id).status == "skipped"
    assert training.get_job(ADMIN, job.id).message == job.message
