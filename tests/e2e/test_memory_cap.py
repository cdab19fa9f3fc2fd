"""A run past its memory budget on a real worker: it fails alone, once, with the reason, and the
worker's pool process goes on to the next run (app/runtime/memory.py)."""

from __future__ import annotations

import uuid

from app.runspec import RunSpec
from app.services import runs
from tests.conftest import ADMIN, EXAMPLE_SPEC
from tests.processes import Worker, broker_idle, wait_until
from workers.queue import CeleryQueue

BUDGET_MB = 200
#: 200,000 tasks on 72 devices peaked at 477 MB above its process's start (docs/guarantees.md),
#: well past BUDGET_MB; the submitting process's own budget (this machine's) lets it through.
OVER_BUDGET = {
    "workload": {"kind": "synthetic", "num_tasks": 200_000, "seed": 1},
    "cluster": {"cpus": 64, "gpus": 8},
    "policies": ["heft"],
}


def submit(body: dict) -> uuid.UUID:
    return runs.submit_run(ADMIN, RunSpec.model_validate(body), CeleryQueue()).run.id


def ended(run_id: uuid.UUID) -> bool:
    return runs.get_run(ADMIN, run_id).status in {"succeeded", "failed"}


def test_a_run_past_the_memory_cap_fails_alone_and_the_worker_goes_on(clean_state):
    worker = Worker(concurrency=1, env={"HMS_RUN_MEMORY_MB": str(BUDGET_MB)})
    try:
        pool = worker.pool_pids()
        too_big = submit(OVER_BUDGET)
        wait_until(lambda: ended(too_big), 120, "the run over budget ended", every_s=0.1)
        run = runs.get_run(ADMIN, too_big)
        assert (run.status, run.error, run.attempts) == (
            "failed",
            f"needed more than the {BUDGET_MB} MB a run may use",
            1,
        )
        after = submit(EXAMPLE_SPEC)
        wait_until(lambda: ended(after), 120, "the next run ended", every_s=0.1)
        assert runs.get_run(ADMIN, after).status == "succeeded", runs.get_run(ADMIN, after).error
        assert worker.pool_pids() == pool  # the same pool process ran both: it was not lost
        wait_until(broker_idle, 60, "every message handled")
        assert runs.get_run(ADMIN, too_big).attempts == 1  # not redelivered
    finally:
        worker.stop()
