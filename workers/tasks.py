"""Celery tasks: parse the message, call the service, translate errors into retry / no retry."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from app.errors import TransientStoreError
from app.runtime.logs import current_context
from app.services import recovery, retention, studies, training
from app.services.runs import execute_run, execute_runs
from app.settings import get_settings
from celeryconfig import parse_crontab
from workers import task_names as names
from workers.celery_app import app
from workers.queue import CeleryQueue
from workers.slots import latest_fire

_settings = get_settings()
log = get_task_logger(__name__)

_RETRIES: dict[str, Any] = {
    "autoretry_for": (TransientStoreError,),
    "retry_backoff": 2,
    "retry_backoff_max": _settings.retry_backoff_max_s,
    "retry_jitter": True,
    "max_retries": _settings.max_retries,
}


class _CeleryProgress:
    """Publishes progress as the custom state PROGRESS (for AsyncResult) and as a
    `task-progress` event (for Flower).

    Monitoring only (the progress is already in the database): once a report cannot reach the
    broker, the next `redis_health_check_s` seconds of reports are not sent, so a run whose
    worker is cut from the broker waits out the socket timeout once, not at every report."""

    def __init__(self, task: Task, run_id: uuid.UUID | None = None) -> None:
        self.task = task
        self.run_id = run_id  # the run, in a message of several (run_simulations)
        self.paused_until = float("-inf")  # time.monotonic() before which nothing is sent

    def __call__(self, progress: float, stage: str) -> None:
        if time.monotonic() < self.paused_until:
            return
        meta: dict[str, Any] = {"progress": round(progress, 4), "stage": stage}
        if self.run_id is not None:
            meta["run_id"] = str(self.run_id)
        try:
            self.task.update_state(state="PROGRESS", meta=meta)
            self.task.send_event("task-progress", **meta)
        except (BrokerError, RedisError, OSError):
            self.paused_until = time.monotonic() + _settings.redis_health_check_s
            log.warning("could not publish progress of %s", self.task.request.id, exc_info=True)


@app.task(name=names.RUN_SIMULATION, bind=True, **_RETRIES)
def run_simulation(self: Task, run_id: str) -> dict[str, Any]:
    outcome = execute_run(uuid.UUID(run_id), _CeleryProgress(self), self.request.hostname)
    return {"run_id": run_id, "outcome": outcome.value}


@app.task(name=names.RUN_SIMULATIONS, bind=True, **_RETRIES)
def run_simulations(self: Task, run_ids: list[str], priority: int) -> dict[str, Any]:
    """Several runs of a study's cell (app/db/studies.RUNS_PER_MESSAGE), one after the other
    while the message is within its budget (services/runs.execute_runs); those left are sent
    again, one message each. Each run's log lines name it; its progress is published with its
    id."""
    context = current_context()

    def sink_for(run_id: uuid.UUID) -> _CeleryProgress:
        if context is not None:
            context.run_id = str(run_id)
        return _CeleryProgress(self, run_id)

    ids = [uuid.UUID(run_id) for run_id in run_ids]
    shared = execute_runs(ids, sink_for, CeleryQueue(), priority, self.request.hostname)
    if shared.left:
        log.info("%d runs of this message were not started in time: sent again", len(shared.left))
    return {
        "runs": [
            {"run_id": str(run_id), "outcome": outcome.value, "seconds": round(seconds, 6)}
            for run_id, outcome, seconds in shared.executed
        ],
        "sent_again": [str(run_id) for run_id in shared.left],
    }


@app.task(name=names.FAN_OUT_STUDY, bind=True, **_RETRIES)
def fan_out_study(self: Task, study_id: str) -> dict[str, Any]:
    """Create the study's runs in batches and send them (services/studies.py); a redelivery
    goes on where the last delivery stopped."""
    sent = studies.fan_out_study(uuid.UUID(study_id), CeleryQueue())
    return {"study_id": study_id, "sent": sent}


@app.task(name=names.PURGE_STUDY, bind=True, **_RETRIES)
def purge_study(self: Task, study_id: str) -> dict[str, Any]:
    """Delete a deleted study's rows in batches (services/studies.py)."""
    return {"study_id": study_id, "runs_deleted": studies.purge_study(uuid.UUID(study_id))}


@app.task(name=names.RETRAIN_MODEL, bind=True, **_RETRIES)
def retrain_model(self: Task, job_id: str) -> dict[str, Any]:
    outcome = training.execute_retrain(
        uuid.UUID(job_id), _CeleryProgress(self), self.request.hostname
    )
    return {"job_id": job_id, "status": outcome.status.value, "message": outcome.message}


@app.task(name=names.NIGHTLY_RETRAIN, bind=True, **_RETRIES)
def nightly_retrain(self: Task, cron: str) -> dict[str, Any]:
    """Fired by beat with its crontab: one retrain per schedule slot, however many beats fire
    it and however late a redelivered message arrives that day."""
    fired = latest_fire(parse_crontab(cron), datetime.now(UTC))
    return _retrain_slot(self, "nightly", f"nightly:{fired:%Y-%m-%dT%H:%M}Z")


@app.task(name=names.RETRAIN_IF_DUE, bind=True, **_RETRIES)
def retrain_if_due(self: Task) -> dict[str, Any]:
    """Fired by beat every 30 s when automatic retraining is on."""
    slot = training.due_auto_slot()
    if slot is None:
        return {"status": "not due"}
    return _retrain_slot(self, "auto", slot)


def _retrain_slot(task: Task, trigger: str, slot: str) -> dict[str, Any]:
    job = training.claim_slot(trigger, slot)
    if job is None:
        log.info("retrain slot %s already has its job; nothing to do", slot)
        return {"slot": slot, "status": "duplicate"}
    outcome = training.execute_retrain(job.id, _CeleryProgress(task))
    return {"slot": slot, "job_id": str(job.id), "status": outcome.status.value}


@app.task(name=names.SWEEP, bind=True, **_RETRIES)
def sweep(self: Task) -> dict[str, Any]:
    """Fired by beat: send again what a crash left behind (app/services/recovery.py)."""
    report = recovery.sweep(CeleryQueue())
    if report.runs or report.retrains or report.fan_outs or report.studies or report.purges:
        log.warning(
            "recovery sweep re-sent runs %s, retrains %s, fan-outs of studies %s and purges of "
            "deleted studies %s, aggregated studies %s",
            report.runs, report.retrains, report.fan_outs, report.purges, report.studies,
        )  # fmt: skip
    return {
        "runs": report.runs,
        "retrains": report.retrains,
        "fan_outs": report.fan_outs,
        "studies": report.studies,
        "purges": report.purges,
    }


@app.task(name=names.APPLY_RETENTION, bind=True, **_RETRIES)
def apply_retention(self: Task) -> dict[str, Any]:
    """Fired by beat nightly when HMS_RETENTION_DAYS is set (app/services/retention.py)."""
    report = retention.apply_retention()
    if report.runs or report.studies:
        log.info(
            "retention deleted %d runs and %d studies that ended before %s",
            report.runs, report.studies, report.cutoff,
        )  # fmt: skip
    return {"enabled": report.enabled, "runs": report.runs, "studies": report.studies}
