"""Deleting a study through the API with a real worker: the answer comes at once, the study is
hidden at once, and the worker's purge removes every row in the background."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import app
from app.db.models import Run, Study
from app.db.session import session_scope
from app.services import studies
from app.studies.spec import StudySpec
from tests.conftest import ADMIN, TEST_API_KEY
from tests.fakes import RecordingQueue
from tests.processes import broker_idle, wait_until

STUDY = {
    "name": "to delete",
    "base": {
        "workload": {"kind": "synthetic", "num_tasks": 20},
        "cluster": {"cpus": 2, "gpus": 1},
        "policies": ["greedy"],
    },
    "grid": {"cluster.gpus": [1, 2]},
    "repetitions": 60,
}


def rows_left(study_id: uuid.UUID) -> tuple[int, int]:
    with session_scope() as session:
        runs = session.scalar(select(func.count()).where(Run.study_id == study_id))
        study = session.scalar(select(func.count()).where(Study.id == study_id))
    return study or 0, runs or 0


def test_a_deleted_study_answers_at_once_and_a_worker_removes_its_rows(clean_state, worker):
    # 120 runs, never sent (no fan-out: the worker only sees the purge), then cancelled.
    spec = StudySpec.model_validate(STUDY)
    study_id = studies.submit_study(ADMIN, spec, RecordingQueue()).study.id
    studies.cancel_study(ADMIN, study_id)
    with TestClient(app, headers={"X-API-Key": TEST_API_KEY}) as client:
        answer = client.delete(f"/api/v1/studies/{study_id}")
        assert answer.status_code == 202 and answer.json()["runs"] == 120
        assert client.get(f"/api/v1/studies/{study_id}").status_code == 404
        assert client.get("/api/v1/studies").json()["total"] == 0
        wait_until(lambda: rows_left(study_id) == (0, 0), 120, "the study's rows gone")
        assert client.delete(f"/api/v1/studies/{study_id}").status_code == 404
    wait_until(broker_idle, 60, "every message handled")
