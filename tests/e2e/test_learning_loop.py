"""The learning loop through real processes: runs feed samples, a retrain on the `training`
queue promotes a model the same worker then uses, and celery beat fires the nightly retrain
exactly once per slot even with two beat processes."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import EXAMPLE_SPEC, TEST_API_KEY
from tests.processes import ProcfileProcess, Worker, free_port, wait_until

AUTH = {"X-API-Key": TEST_API_KEY}
SMALL_TRAINING = {
    "HMS_SAMPLES_PER_RUN": "400",
    "HMS_MIN_TRAINING_SAMPLES": "1000",
    "HMS_TRAINING_MAX_ITER": "60",
}
FAMILY = {**EXAMPLE_SPEC, "policies": ["greedy", "oracle", "learned"]}


@pytest.fixture
def learner(servers, clean_state):
    worker = Worker(concurrency=1, env=SMALL_TRAINING)
    yield worker
    worker.stop()


@pytest.fixture
def http(api):
    with httpx.Client(base_url=api.url, headers=AUTH, timeout=30) as client:
        yield client


def finished(http: httpx.Client, path: str, statuses: set[str], timeout_s: float = 90) -> dict:
    document: dict = {}

    def done() -> bool:
        nonlocal document
        document = http.get(path).json()
        return document["status"] in statuses

    wait_until(done, timeout_s, f"{path} in {statuses}", every_s=0.2)
    return document


def run(http: httpx.Client, seed: int) -> dict:
    body = {**FAMILY, "workload": {**FAMILY["workload"], "seed": seed}}
    run_id = http.post("/api/v1/runs", json=body).json()["id"]
    return finished(http, f"/api/v1/runs/{run_id}", {"succeeded", "failed"})


def test_a_promoted_model_is_used_by_the_same_worker_without_a_restart(learner, http):
    worker_pid = learner.pid
    assert all(run(http, seed)["model_version"] == "bootstrap-1" for seed in (1, 2))
    results = http.get(f"/api/v1/runs/{run(http, 3)['id']}/results").json()
    assert results["model_version"] == "bootstrap-1" and "bootstrap" in results["model_note"]

    response = http.post("/api/v1/models/retrain")
    assert response.status_code == 202
    job = finished(http, response.headers["Location"], {"succeeded", "skipped", "failed"})
    assert job["status"] == "succeeded" and job["model_version"] == 1, job
    models = http.get("/api/v1/models").json()
    assert models[0]["version"] == 1 and models[0]["is_active"]
    assert models[0]["sample_count"] == 3 * 400 * 2

    after = run(http, 4)
    assert after["model_version"] == "v1"
    assert learner.pid == worker_pid and learner.alive()
    assert http.get(f"/api/v1/runs/{after['id']}/results").json()["model_note"] is None


def test_two_beats_fire_the_nightly_retrain_but_only_one_job_runs(learner, http, tmp_path):
    """A crontab of every minute stands in for the night; two beat processes fire each slot."""
    beats = [
        ProcfileProcess(
            "beat",
            {"HMS_RETRAIN_CRON": "* * * * *", "HMS_DATA_DIR": str(tmp_path / f"beat{i}")},
        )
        for i in range(2)
    ]
    flower_port = free_port()
    flower = ProcfileProcess(
        "flower", {"FLOWER_BASIC_AUTH": "watch:er", "HMS_FLOWER_PORT": str(flower_port)}
    )
    try:

        def nightly_jobs() -> list[dict]:
            jobs = http.get("/api/v1/models/retrains").json()["items"]
            return [job for job in jobs if job["trigger"] == "nightly"]

        wait_until(lambda: bool(nightly_jobs()), 150, "the first nightly fire", every_s=0.5)
        # Up to a minute apart: a beat that came up after the minute turned fires the next slot.
        wait_until(
            lambda: all("Sending due task nightly-retrain" in beat.log() for beat in beats),
            90,
            "both beats to send the slot",
        )
        job = finished(http, f"/api/v1/models/retrains/{nightly_jobs()[0]['id']}",
                       {"succeeded", "skipped", "failed"})  # fmt: skip
        # The second message of the slot found the first one's job.
        wait_until(
            lambda: "already has its job" in learner.log(), 90, "the duplicate to be dropped"
        )
        same_slot = [j for j in nightly_jobs() if j["slot"] == job["slot"]]
        assert len(same_slot) == 1
        assert job["status"] == "skipped" and "samples < minimum" in job["message"]

        with httpx.Client(base_url=f"http://127.0.0.1:{flower_port}", auth=("watch", "er")) as f:

            def flower_saw_it() -> bool:
                try:
                    tasks = f.get("/api/tasks", params={"taskname": "hms.nightly_retrain"})
                except httpx.ConnectError:
                    return False  # not listening yet: it starts once a worker answers its ping
                return tasks.status_code == 200 and len(tasks.json()) >= 2

            # Flower lists what it saw since it connected: one that came up after this slot's
            # fires sees the next minute's two.
            wait_until(flower_saw_it, 150, "Flower to list both nightly fires", every_s=0.5)
    finally:
        for process in (*beats, flower):
            process.stop()
