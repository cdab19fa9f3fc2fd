"""Soak: small runs (150, or `--soak-runs`) through 2 worker processes while pool processes and
whole workers are killed every couple of seconds. Every run must end, and end exactly once.

The number of runs sets how long the kills go on, not what they prove: every fourth kill takes a
whole worker, whose runs come back only after the visibility timeout, so the soak lasts at least
that long after it, and the test requires a whole worker killed, a run redelivered and five
kills in all whatever the number: if the runs end before those kills (a whole worker's restart
holds the kills back for seconds), it submits as many runs again."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from sqlalchemy import func, select

from app.db.models import Run, RunResult, RunSchedule, TrainingSampleSet
from app.db.session import session_scope
from app.runspec import RunSpec
from app.services import runs
from tests.conftest import ADMIN, EXAMPLE_SPEC
from tests.e2e.test_faults import RECOVERY
from tests.processes import ProcfileProcess, Worker
from tests.timing import SLOWDOWN, Limits, seconds_to_execute
from workers.queue import CeleryQueue

KILL_EVERY_S = 1.5
#: 2 workers x 2 pool processes: four runs at a time.
WORKERS, POOL_PROCESSES = 2, 2
BODY = {
    **EXAMPLE_SPEC,
    "workload": {"kind": "synthetic", "num_tasks": 15000},
    "policies": ["greedy", "heft", "oracle"],
}


@pytest.fixture(scope="module")
def soak_runs(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--soak-runs"))


@pytest.fixture(scope="module")
def soak_env(servers) -> dict[str, str]:
    """Time limits SLOWDOWN times what a run takes here now, measured alone, times the number
    of runs that execute at once (they share the cores)."""
    at_once = WORKERS * POOL_PROCESSES
    limits = Limits.above(SLOWDOWN * at_once * seconds_to_execute(BODY))
    return {
        **RECOVERY,
        **limits.env(),
        "HMS_SAMPLES_PER_RUN": "20",
        "HMS_MAX_RUN_ATTEMPTS": "5",
    }


def tally() -> dict[str, int]:
    with session_scope() as session:
        by_status = dict(
            session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
        )
        succeeded = select(Run.id).where(Run.status == "succeeded")

        def rows(model, *where):
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

        return {
            **{
                status: by_status.get(status, 0)
                for status in ("queued", "running", "succeeded", "failed", "cancelled")
            },
            "results": rows(RunResult),
            "orphan_results": rows(RunResult, RunResult.run_id.not_in(succeeded)),
            "orphan_schedules": rows(RunSchedule, RunSchedule.run_id.not_in(succeeded)),
            "samples": session.scalar(select(func.sum(TrainingSampleSet.count))) or 0,
            "sample_sets": rows(TrainingSampleSet),
            "orphan_samples": rows(TrainingSampleSet, TrainingSampleSet.run_id.not_in(succeeded)),
            "redelivered": rows(Run, Run.attempts > 1),
            "max_attempts": session.scalar(select(func.max(Run.attempts))) or 0,
        }


def submit(first_seed: int, count: int) -> int:
    """Submit `count` runs of BODY, seeds from `first_seed` on; how many."""
    for seed in range(first_seed, first_seed + count):
        runs.submit_run(ADMIN, RunSpec.model_validate({**BODY, "seed": seed}), CeleryQueue())
    return count


def enough(kills: dict[str, int]) -> bool:
    """The kills every soak must have made, whatever its number of runs."""
    return sum(kills.values()) >= 5 and kills["whole worker"] >= 1


@pytest.mark.slow
@pytest.mark.timeout(900)  # its own deadline is 600 s; pytest's default 300 s is shorter
def test_soak_every_run_ends_exactly_once_under_repeated_kills(soak_runs, soak_env, clean_state):
    rng = random.Random(7)
    workers = [Worker(POOL_PROCESSES, env=soak_env, wait=False) for _ in range(WORKERS)]
    for worker in workers:
        worker.wait_ready()
    beat = ProcfileProcess("beat", soak_env)
    started = time.monotonic()
    submitted = submit(0, soak_runs)
    kills = {"pool process": 0, "whole worker": 0}
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            counts = tally()
            if counts["queued"] + counts["running"] == 0:
                if enough(kills):
                    break
                # The runs ended before the kills the test requires (a whole worker's restart
                # blocks this loop for seconds): more runs, so that the kills meet work.
                submitted += submit(submitted, soak_runs)
            time.sleep(KILL_EVERY_S)
            if sum(kills.values()) % 4 == 3:
                victim = rng.randrange(len(workers))
                workers[victim].kill()
                workers[victim] = Worker(concurrency=POOL_PROCESSES, env=soak_env)
                kills["whole worker"] += 1
            else:
                children = [pid for worker in workers for pid in worker.pool_pids()]
                if children:
                    os.kill(rng.choice(children), signal.SIGKILL)
                    kills["pool process"] += 1
        elapsed = time.monotonic() - started
    finally:
        beat.stop()
        for worker in workers:
            worker.stop()
    counts = tally()
    print(f"\nsoak: {submitted} runs in {elapsed:.0f} s, kills {kills}, figures {counts}")
    assert counts["queued"] == counts["running"] == 0
    assert counts["succeeded"] + counts["failed"] == submitted
    assert counts["results"] == 3 * counts["succeeded"]
    assert counts["samples"] == 20 * 2 * counts["succeeded"]
    assert counts["sample_sets"] == counts["succeeded"]  # one per run: stored once
    assert counts["orphan_results"] == counts["orphan_schedules"] == counts["orphan_samples"] == 0
    assert enough(kills)
    assert counts["redelivered"] >= 1
    with session_scope() as session:
        failures = session.scalars(select(Run.error).where(Run.status == "failed")).all()
    assert all(error.startswith("gave up after") for error in failures), failures
