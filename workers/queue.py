"""The queue ports (RunQueue, RetrainQueue) implemented with Celery: how the API hands work to
workers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from app.errors import TransientStoreError
from app.runtime.logs import current_request_id
from celeryconfig import API_PRIORITY_MAX, broker_priority
from workers.celery_app import app
from workers.logs import REQUEST_ID_HEADER
from workers.tracing import publishing

log = logging.getLogger(__name__)

# Publishing needs no result backend: the workers store results and progress with their own
# configuration. Without one, sending does not subscribe to each task's result channel (the Redis
# backend would, and never unsubscribe in a process that does not wait for results), nor fail
# on it when the broker is down.
_publisher = Celery("hms", set_as_current=False)
_publisher.config_from_object("celeryconfig")
_publisher.conf.result_backend = None

_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def _headers() -> dict[str, str]:
    """What travels with a message besides its arguments: the id of the API request (or of the
    task) that sent it, for the worker's log lines (workers/logs.py); `publishing` adds the
    trace context when tracing is on (workers/tracing.py)."""
    request_id = current_request_id()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


class CeleryQueue:
    def enqueue_run(self, run_id: uuid.UUID, priority: int) -> None:
        try:
            with publishing("hms.run_simulation", "simulations", str(run_id), _headers()) as sent:
                _publisher.send_task(
                    "hms.run_simulation",
                    args=[str(run_id)],
                    task_id=str(run_id),  # one task per run: a duplicate message is harmless
                    queue="simulations",
                    priority=broker_priority(priority),
                    retry=True,
                    retry_policy=_PUBLISH_RETRY,
                    headers=sent,
                )
        except (BrokerError, RedisError, OSError) as exc:
            raise TransientStoreError("broker", str(exc)) from exc

    def enqueue_runs(self, run_ids: Sequence[uuid.UUID], priority: int) -> None:
        """One producer (one connection) for the whole batch: no connection checkout per run."""
        headers = _headers()
        try:
            with _publisher.producer_or_acquire() as producer:
                for run_id in run_ids:
                    with publishing(
                        "hms.run_simulation", "simulations", str(run_id), headers
                    ) as sent:
                        _publisher.send_task(
                            "hms.run_simulation",
                            args=[str(run_id)],
                            task_id=str(run_id),
                            queue="simulations",
                            priority=broker_priority(priority),
                            producer=producer,
                            retry=True,
                            retry_policy=_PUBLISH_RETRY,
                            headers=sent,
                        )
        except (BrokerError, RedisError, OSError) as exc:
            raise TransientStoreError("broker", str(exc)) from exc

    def enqueue_fan_out(self, study_id: uuid.UUID) -> None:
        try:
            with publishing("hms.fan_out_study", "simulations", None, _headers()) as sent:
                _publisher.send_task(
                    "hms.fan_out_study",
                    args=[str(study_id)],
                    queue="simulations",
                    priority=broker_priority(API_PRIORITY_MAX),  # ahead of queued runs: short
                    retry=True,
                    retry_policy=_PUBLISH_RETRY,
                    headers=sent,
                )
        except (BrokerError, RedisError, OSError) as exc:
            raise TransientStoreError("broker", str(exc)) from exc

    def enqueue_retrain(self, job_id: uuid.UUID) -> None:
        try:
            with publishing("hms.retrain_model", "training", str(job_id), _headers()) as sent:
                _publisher.send_task(
                    "hms.retrain_model",
                    args=[str(job_id)],
                    task_id=str(job_id),
                    queue="training",
                    retry=True,
                    retry_policy=_PUBLISH_RETRY,
                    headers=sent,
                )
        except (BrokerError, RedisError, OSError) as exc:
            raise TransientStoreError("broker", str(exc)) from exc

    def revoke_run(self, run_id: uuid.UUID) -> None:
        try:
            app.control.revoke(str(run_id))
        except (BrokerError, RedisError, OSError):
            # Best effort: a revoked-but-delivered run is skipped anyway (its row is terminal).
            log.warning("could not broadcast revoke for run %s", run_id, exc_info=True)

    def ping(self) -> None:
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=3)
        except (BrokerError, RedisError, OSError) as exc:
            raise TransientStoreError("broker", str(exc)) from exc
