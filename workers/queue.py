"""The queue ports (RunQueue, StudyQueue, RetrainQueue) implemented with Celery: how the API
hands work to workers. Every message goes through `_publish`, by a name from
workers/task_names.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Celery
from kombu import Producer
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from app.errors import TransientStoreError
from app.runtime.logs import current_request_id
from celeryconfig import API_PRIORITY_MAX, broker_priority
from workers import task_names as names
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

#: The queues workers consume (celeryconfig's task routes).
WORK_QUEUES = ("simulations", "training")

_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def _headers() -> dict[str, str]:
    """What travels with a message besides its arguments: the id of the API request (or of the
    task) that sent it, for the worker's log lines (workers/logs.py); `publishing` adds the
    trace context when tracing is on (workers/tracing.py)."""
    request_id = current_request_id()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


@contextmanager
def _reaching_broker() -> Iterator[None]:
    """Turns the broker's being unreachable into TransientStoreError (retry later)."""
    try:
        yield
    except (BrokerError, RedisError, OSError) as exc:
        raise TransientStoreError("broker", str(exc)) from exc


def _publish(
    task: str,
    work_id: uuid.UUID | list[Any],
    *,
    queue: str,
    task_id: str | None,
    priority: int | None = None,
    producer: Producer | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Send one message of `task` (a name from workers/task_names.py) for the work `work_id`
    (or with a list's arguments), retrying the connection briefly; raises TransientStoreError
    if the broker is unreachable.

    `task_id` None lets Celery pick one; `priority` is the API's 0..9 (None: the default);
    `producer` reuses one connection for a batch; `headers` defaults to `_headers()`."""
    options: dict[str, Any] = {} if priority is None else {"priority": broker_priority(priority)}
    with (
        _reaching_broker(),
        publishing(task, queue, task_id, _headers() if headers is None else headers) as sent,
    ):
        _publisher.send_task(
            task,
            args=work_id if isinstance(work_id, list) else [str(work_id)],
            task_id=task_id,
            queue=queue,
            producer=producer,
            retry=True,
            retry_policy=_PUBLISH_RETRY,
            headers=sent,
            # Sent from a task (a study's fan-out), Celery would keep each message's result as
            # a child of that task, for its whole run and in its stored result: a 50,000-run
            # fan-out grew its process by 93 MiB against 40 at 10,000 runs. No one reads them.
            add_to_parent=False,
            **options,
        )


def shared_task_id(run_ids: Sequence[uuid.UUID]) -> str:
    """The task id of a message of several runs: a function of its runs, as a run's message
    has the run's id (the same group sent twice is one task in Flower and the result backend)."""
    return str(uuid.uuid5(run_ids[0], ",".join(str(run_id) for run_id in run_ids[1:])))


class CeleryQueue:
    def enqueue_run(self, run_id: uuid.UUID, priority: int) -> None:
        # One task per run (its id is the run's): a duplicate message is harmless.
        _publish(
            names.RUN_SIMULATION,
            run_id,
            queue="simulations",
            task_id=str(run_id),
            priority=priority,
        )

    def enqueue_run_groups(self, groups: Sequence[Sequence[uuid.UUID]], priority: int) -> None:
        """One producer (one connection) for all of them: no connection checkout per message.
        A group of one run is an ordinary run's message (its task id the run's)."""
        headers = _headers()
        with _reaching_broker(), _publisher.producer_or_acquire() as producer:
            for group in groups:
                single = len(group) == 1
                _publish(
                    names.RUN_SIMULATION if single else names.RUN_SIMULATIONS,
                    group[0] if single else [[str(run_id) for run_id in group], priority],
                    queue="simulations",
                    task_id=str(group[0]) if single else shared_task_id(group),
                    priority=priority,
                    producer=producer,
                    headers=headers,
                )

    def enqueue_fan_out(self, study_id: uuid.UUID) -> None:
        _publish(
            names.FAN_OUT_STUDY,
            study_id,
            queue="simulations",
            task_id=None,
            priority=API_PRIORITY_MAX,  # ahead of queued runs: it is short
        )

    def enqueue_purge(self, study_id: uuid.UUID) -> None:
        # Behind queued runs: the study is already hidden, its rows only take space meanwhile.
        _publish(names.PURGE_STUDY, study_id, queue="simulations", task_id=None, priority=0)

    def enqueue_retrain(self, job_id: uuid.UUID) -> None:
        _publish(names.RETRAIN_MODEL, job_id, queue="training", task_id=str(job_id))

    def revoke_run(self, run_id: uuid.UUID) -> None:
        try:
            app.control.revoke(str(run_id))
        except (BrokerError, RedisError, OSError):
            # Best effort: a revoked-but-delivered run is skipped anyway (its row is terminal).
            log.warning("could not broadcast revoke for run %s", run_id, exc_info=True)

    def messages_held(self) -> int:
        """The lengths of the work queues' lists, one per priority step (kombu's Redis transport
        names them), and of the hash of messages delivered but not acknowledged."""
        with _reaching_broker(), app.connection_for_write() as connection:
            channel = connection.default_channel
            pipeline = channel.client.pipeline()
            for queue in WORK_QUEUES:
                for step in channel.priority_steps:
                    pipeline.llen(channel._q_for_pri(queue, step))
            pipeline.hlen(channel.unacked_key)
            return int(sum(pipeline.execute()))

    def ping(self) -> None:
        with _reaching_broker(), app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
