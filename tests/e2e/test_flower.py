"""Flower, started from the Procfile's own command line, behind basic auth."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.processes import ProcfileProcess, free_port, wait_until

CREDENTIALS = ("watcher", "s3cret-for-tests")


@pytest.fixture
def flower(worker):
    port = free_port()
    env = {"FLOWER_BASIC_AUTH": ":".join(CREDENTIALS), "HMS_FLOWER_PORT": str(port)}
    process = ProcfileProcess("flower", env)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if not process.alive():
            raise RuntimeError(process.log()[-3000:])
        try:
            httpx.get(url, timeout=1)
        except httpx.HTTPError:
            return False
        return True

    wait_until(answers, 60, "Flower listening")
    yield url
    process.stop()


def test_flower_refuses_to_start_without_credentials(servers):
    env = {key: value for key, value in os.environ.items() if key != "FLOWER_BASIC_AUTH"}
    process = ProcfileProcess(
        "flower", {**env, "FLOWER_BASIC_AUTH": "", "HMS_FLOWER_PORT": str(free_port())}
    )
    process.popen.wait(30)
    assert process.popen.returncode != 0
    assert "FLOWER_BASIC_AUTH" in process.log()


def test_flower_needs_basic_auth_and_shows_worker_queues_and_tasks(
    flower, worker, api, clean_state
):
    assert httpx.get(f"{flower}/api/workers", timeout=30).status_code == 401
    assert httpx.get(flower, auth=("watcher", "wrong"), timeout=30).status_code == 401
    with httpx.Client(base_url=flower, auth=CREDENTIALS, timeout=30) as client:
        assert client.get("/").status_code == 200
        workers = client.get("/api/workers", params={"refresh": "true"}).json()
        assert worker.hostname in workers
        queues = {q["name"] for q in client.get("/api/queues/length").json()["active_queues"]}
        assert {"simulations", "training"} <= queues

        run = httpx.post(
            f"{api.url}/api/v1/runs",
            headers={"X-API-Key": TEST_API_KEY},
            json={"workload": {"kind": "synthetic", "num_tasks": 500}, "policies": ["greedy"]},
            timeout=30,
        ).json()

        def task_seen() -> bool:
            task = client.get(f"/api/task/info/{run['id']}")
            return task.status_code == 200 and task.json().get("state") == "SUCCESS"

        wait_until(task_seen, 30, "Flower to see the task succeed", every_s=0.5)
