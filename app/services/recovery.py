"""The recovery sweep (celery beat, every `sweep_interval_s`): no committed run or retrain is left
behind by a crash.

A run is sent again when it is queued but its message never left (the process died between the
commit and the enqueue), queued long enough that its message was probably lost (a broker that
crashed before persisting it) — only while the broker holds fewer messages than the database has
runs and jobs waiting for one: a study of 100,000 runs keeps runs queued for hours, and sending
each again every `requeue_queued_after_s` would double its queue — or running but silent for
longer than the hard time limit (its worker died and the message was lost with it); a study's
runs never sent are left to its
fan-out, whose message is sent again once the study went quiet. Sending twice is harmless: the
task id is the run id and `execute_run` skips a run that already ended. Retraining jobs are
swept the same way, and a study whose last run ended but whose aggregation never committed (its
worker died) is aggregated here, and a deleted study whose rows are not all gone and whose purge
went silent has its purge sent again (services/studies.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from app.db import lifecycle as db_lifecycle
from app.db import studies as study_store
from app.db.models import Run, TrainingJob, utcnow
from app.db.session import session_scope
from app.errors import TransientStoreError
from app.services import lifecycle, studies
from app.services.ports import WorkQueue
from app.settings import get_settings


@dataclass
class SweepReport:
    runs: list[str] = field(default_factory=list)  # ids sent again
    retrains: list[str] = field(default_factory=list)
    fan_outs: list[str] = field(default_factory=list)  # studies whose fan-out was sent again
    studies: list[str] = field(default_factory=list)  # ids aggregated (their worker died)
    purges: list[str] = field(default_factory=list)  # deleted studies whose purge was re-sent


def messages_lost(queue: WorkQueue) -> bool:
    """Whether the broker holds fewer messages than the database has work waiting for one. The
    database is counted first: work sent meanwhile adds to the broker's side only. A broker that
    cannot be reached could not take the messages again anyway: False, and the sweep goes on
    with what needs only the database (aggregations); the next sweep asks again."""
    with session_scope() as session:
        awaiting = study_store.awaiting_run_messages(session)
        awaiting += db_lifecycle.awaiting_messages(session, TrainingJob)
    try:
        return queue.messages_held() < awaiting
    except TransientStoreError:
        return False


def sweep(queue: WorkQueue) -> SweepReport:
    settings = get_settings()
    now = utcnow()
    queued = now - timedelta(seconds=settings.requeue_queued_after_s)
    stuck = partial(
        db_lifecycle.stuck,
        unsent_before=now - timedelta(seconds=settings.requeue_unsent_after_s),
        queued_before=queued if messages_lost(queue) else None,
        silent_before=now - timedelta(seconds=settings.stale_running_after_s),
    )
    with session_scope() as session:
        runs = stuck(session, Run, study_store.UNSENT_STUDY_RUN)
        jobs = stuck(session, TrainingJob)
    report = SweepReport()
    for run in runs:
        lifecycle.send(run, partial(queue.enqueue_run, run.id, run.priority), "run")
        report.runs.append(str(run.id))
    for job in jobs:
        lifecycle.send(job, partial(queue.enqueue_retrain, job.id), "retraining job")
        report.retrains.append(str(job.id))
    report.fan_outs = studies.resend_quiet_fan_outs(queue)
    report.studies = studies.aggregate_due()
    report.purges = studies.resend_purges(queue)
    return report
