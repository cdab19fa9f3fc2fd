"""docker-compose.yml keeps `docker compose up --scale worker=N` working (Docker itself is not
available where the suite runs: the file is checked, not run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.processes import procfile_command

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_the_worker_service_has_nothing_two_replicas_would_share():
    """A fixed container name, hostname or host port makes a second replica fail to start, and
    a fixed Celery hostname (`-n`) makes two workers one in Flower's and /queues' eyes: each
    replica's hostname is its container's, which Celery's default `celery@<hostname>` takes."""
    worker = _compose()["services"]["worker"]
    assert not {"container_name", "hostname", "ports"} & set(worker)
    command = procfile_command("worker")
    assert "--hostname" not in command and " -n " not in command
    assert worker["command"][-1] == "worker"  # the Procfile's line, through honcho


def test_beat_runs_once_and_every_worker_replica_is_scraped():
    compose = _compose()
    assert compose["services"]["beat"].get("deploy", {}).get("replicas", 1) == 1
    prometheus = yaml.safe_load((PROJECT_ROOT / "ops" / "prometheus.yml").read_text())
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "hms-worker"]
    # compose's DNS answers every replica's address for the service name
    assert job["dns_sd_configs"] == [{"names": ["worker"], "type": "A", "port": 9808}]
