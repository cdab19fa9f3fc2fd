"""Time limits and waits derived from durations measured on this machine, in this test session.

A fixed number of seconds that decides pass or fail holds on an idle machine and breaks on a busy
one. On 2 cores the fault tests' 500k-task run took 2.5-4.7 s on its own, 7.5 s beside two busy
loops, and 9-20 s beside them while other suites ran too: a fixed 8 s limit failed it. So the
tests that give workers time limits first measure how long their runs take here, now, and set the
limits a multiple of that away; waits for an observable state only get generous upper bounds.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, text

from app.db.models import Run, TrainingSampleSet
from app.db.session import session_scope
from app.runspec import RunSpec
from app.services import runs
from tests.conftest import ADMIN
from tests.fakes import RecordingQueue

#: How much slower than when it was measured a run may get before a limit derived from the
#: measurement stops it: the load can change during the session (another suite starts beside this
#: one), and a worker competes with the API, beat and the test process for the same cores.
SLOWDOWN = 4
#: The least a limit that runs must never reach gets (s). A run measured at 0.17 s on a quiet
#: moment gave limits of 3/4/5 s, and a later burst of load (another suite, a restarting worker
#: beside it) stalled one run past 5 s between two progress reports: the soak failed it. Only the
#: redelivery waits grow with it.
MIN_LIMIT_S = 10

_seconds: dict[str, float] = {}


def seconds_to_execute(spec: dict[str, Any]) -> float:
    """Wall seconds this process takes to execute a run of `spec` (claim, simulate with progress
    reports, store results and samples): what a worker on this machine takes, now. Measured once
    per session, after a small warm-up run of the same policies (compiled kernels loaded,
    connections open); the runs' rows are deleted again. Needs the database (`servers`), and must
    run before a test's `clean_state`, or its rows would be counted: call it from a session- or
    module-scoped fixture."""
    key = json.dumps(spec, sort_keys=True)
    if key not in _seconds:
        _execute({**spec, "workload": {**spec["workload"], "num_tasks": 1000}})
        _seconds[key] = _execute(spec)
        print(f"\n{spec['workload']['num_tasks']}-task run executed in {_seconds[key]:.2f} s")
    return _seconds[key]


def _execute(spec: dict[str, Any]) -> float:
    run_id = runs.submit_run(ADMIN, RunSpec.model_validate(spec), RecordingQueue()).run.id
    started = time.perf_counter()
    runs.execute_run(run_id)
    elapsed = time.perf_counter() - started
    with session_scope() as session:
        session.execute(delete(TrainingSampleSet).where(TrainingSampleSet.run_id == run_id))
        session.execute(delete(Run).where(Run.id == run_id))
    return elapsed


@dataclass(frozen=True)
class Limits:
    """A worker's time limits (s), ordered as Settings requires: the run stops itself past `run_s`,
    Celery interrupts it past `soft_s` and kills it past `hard_s`, and the broker hands an
    unacknowledged message out again after `visibility_s`."""

    run_s: float
    soft_s: int
    hard_s: int
    visibility_s: int

    @classmethod
    def above(cls, seconds: float) -> Limits:
        """Limits no run shorter than `seconds` reaches: its own limit at `seconds` (rounded up,
        at least MIN_LIMIT_S), Celery's 1 and 2 s later, the visibility timeout 2 s after the
        hard limit."""
        run = max(MIN_LIMIT_S, math.ceil(seconds))
        return cls(run, run + 1, run + 2, run + 4)

    @classmethod
    def below(cls, seconds: float) -> Limits:
        """Limits that stop a run of `seconds` on its own limit, at 1/SLOWDOWN of it. The run only
        checks its limit at progress reports (the first one after building the workload), so
        Celery's soft limit comes another 2/SLOWDOWN of it later, whole seconds, and two seconds
        more; the hard limit 1 s after that, the visibility timeout 2 s later. (With 1/SLOWDOWN
        and one second, a run measured at 8.8 s reached its first progress report after Celery's
        soft limit at load average 12, and was stopped by Celery instead of by itself.)"""
        run = max(0.1, round(seconds / SLOWDOWN, 1))
        soft = math.ceil(3 * run) + 2
        return cls(run, soft, soft + 1, soft + 3)

    def env(self) -> dict[str, str]:
        return {
            "HMS_RUN_TIME_LIMIT_S": f"{self.run_s:g}",
            "HMS_TASK_SOFT_TIME_LIMIT_S": str(self.soft_s),
            "HMS_TASK_TIME_LIMIT_S": str(self.hard_s),
            "HMS_VISIBILITY_TIMEOUT_S": str(self.visibility_s),
        }


def wait_for_a_statement_waiting_on_a_lock(prefix: str) -> None:
    """Wait until a statement that starts with `prefix` waits on a lock (a heavyweight lock:
    a row's, a table's or an advisory one)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE :q"
    )
    deadline = time.monotonic() + 120  # a bound on a hang, not a measure
    while True:
        with session_scope() as session:
            if session.scalar(query, {"q": prefix + "%"}):
                return
        assert time.monotonic() < deadline, f"no {prefix!r} waited on a lock"
        time.sleep(0.05)
