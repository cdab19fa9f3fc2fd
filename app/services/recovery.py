"""The recovery sweep (celery beat, every `sweep_interval_s`): no committed run or retrain is left
behind by a crash.

A run is sent again when it is queued but its message never left (the process died between the
commit and the enqueue), queued long enough that its message was probably lost (a broker that
crashed before persisting it), or running but silent for longer than the hard time limit (its
worker died and the message was lost with it). Sending twice is harmless: the task id is the run
id and `execute_run` skips a run that already ended. Retraining jobs are swept the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from app.db import runs as run_store
from app.db import training as training_store
from app.db.models import utcnow
from app.db.session import session_scope
from app.services.ports import WorkQueue
from app.settings import get_settings


@dataclass
class SweepReport:
    runs: list[str] = field(default_factory=list)  # ids sent again
    retrains: list[str] = field(default_factory=list)


def sweep(queue: WorkQueue) -> SweepReport:
    settings = get_settings()
    now = utcnow()
    cutoffs = {
        "unsent_before": now - timedelta(seconds=settings.requeue_unsent_after_s),
        "queued_before": now - timedelta(seconds=settings.requeue_queued_after_s),
        "silent_before": now - timedelta(seconds=settings.stale_running_after_s),
    }
    with session_scope() as session:
        runs = run_store.stuck_runs(session, **cutoffs)
        jobs = training_store.stuck_jobs(session, **cutoffs)
    report = SweepReport()
    for run in runs:
        queue.enqueue_run(run.id, run.priority)
        with session_scope() as session:
            run_store.mark_enqueued(session, run.id)
        report.runs.append(str(run.id))
    for job in jobs:
        queue.enqueue_retrain(job.id)
        with session_scope() as session:
            training_store.mark_job_enqueued(session, job.id)
        report.retrains.append(str(job.id))
    return report
