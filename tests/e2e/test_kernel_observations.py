"""Kernel observations through real processes: runs submitted to the API execute on a Celery
worker, which records what they observed for their tenant's kernel performance models, once per
run, in the run's own transaction."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from app.db.models import KernelObservationSet
from app.db.session import session_scope
from tests.conftest import TEAM_A_KEY, TEAM_B_KEY, tiled_spec
from tests.processes import wait_until


def submitted(api, key: str, body: dict) -> str:
    with httpx.Client(base_url=api.url, headers={"X-API-Key": key}, timeout=30) as client:
        return client.post("/api/v1/runs", json=body).json()["id"]


def ended(api, key: str, run_id: str) -> dict:
    run: dict = {}

    def done() -> bool:
        nonlocal run
        with httpx.Client(base_url=api.url, headers={"X-API-Key": key}, timeout=30) as client:
            run = client.get(f"/api/v1/runs/{run_id}").json()
        return run["status"] in ("succeeded", "failed", "cancelled")

    wait_until(done, 120, f"run {run_id} ended", every_s=0.2)
    return run


def observations_by_tenant() -> dict[str, int]:
    with session_scope() as session:
        rows = session.execute(
            select(KernelObservationSet.tenant, func.sum(KernelObservationSet.count)).group_by(
                KernelObservationSet.tenant
            )
        ).all()
    return {tenant: count for tenant, count in rows}


def test_a_worker_records_each_kernel_runs_observations_for_its_tenant(api, worker, clean_state):
    runs = [
        (key, submitted(api, key, tiled_spec(tile_size)))
        for key, tile_size in ((TEAM_A_KEY, 256), (TEAM_A_KEY, 512), (TEAM_B_KEY, 256))
    ]
    for key, run_id in runs:
        run = ended(api, key, run_id)
        assert run["status"] == "succeeded", run["error"]
        assert run["perf_model_version"] is None  # no runtime scheduler decided with a model
    assert observations_by_tenant() == {"team-a": 2 * 56, "team-b": 56}
