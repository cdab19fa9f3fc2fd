"""What the queues hold and who consumes them, read from the broker for the Queues page.

kombu's Redis transport emulates priorities with one list per priority step: `simulations` holds
step 0 (served first), `simulations:1` … `simulations:9` the others (celeryconfig.py:
`priority_steps`, `sep`). The API's priority p (9 the most urgent) is broker step 9 - p
(celeryconfig.broker_priority). Messages handed to a worker and not yet acknowledged sit in the
transport's `unacked` hash, for all queues together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from kombu.exceptions import OperationalError
from redis.backoff import NoBackoff
from redis.retry import Retry

import celeryconfig
from app.settings import get_settings
from workers.celery_app import app as celery_app

QUEUES = tuple(queue.name for queue in celeryconfig.task_queues)
_TRANSPORT: dict[str, Any] = celeryconfig.broker_transport_options
STEPS: list[int] = _TRANSPORT["priority_steps"]
SEP: str = _TRANSPORT["sep"]
#: kombu's Redis transport keeps delivered, unacknowledged messages in this hash.
UNACKED = "unacked"
#: How long the page waits for workers to answer a ping (seconds); a busy pool process still
#: answers, its worker's main process does.
INSPECT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    #: API priority -> messages waiting, 9 (the most urgent) first.
    by_priority: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.by_priority.values())


@dataclass(frozen=True)
class BrokerState:
    queues: list[QueueDepth]
    unacked: int


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    concurrency: int | None
    processed: int | None
    active: int | None


def step_key(queue: str, step: int) -> str:
    """The Redis list of `queue`'s messages at priority step `step`."""
    return queue if step == 0 else f"{queue}{SEP}{step}"


@lru_cache(maxsize=2)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 1)
    )


def broker_state() -> BrokerState:
    """Every queue's depth by priority; redis.RedisError when the broker is unreachable."""
    pipeline = _client(get_settings().require_redis_url()).pipeline()
    for queue in QUEUES:
        for step in STEPS:
            pipeline.llen(step_key(queue, step))
    pipeline.hlen(UNACKED)
    answers = pipeline.execute()
    depths = []
    for index, queue in enumerate(QUEUES):
        counts = answers[index * len(STEPS) : (index + 1) * len(STEPS)]
        by_priority = {
            celeryconfig.API_PRIORITY_MAX - step: int(count)
            for step, count in zip(STEPS, counts, strict=True)
        }
        depths.append(QueueDepth(queue, by_priority))
    return BrokerState(depths, int(answers[-1]))


def workers() -> list[WorkerInfo] | None:
    """The workers that answer within INSPECT_TIMEOUT_S, or None when the broker cannot be
    asked (then it is unknown, not zero)."""
    try:
        inspect = celery_app.control.inspect(timeout=INSPECT_TIMEOUT_S)
        stats: dict[str, Any] = inspect.stats() or {}
        active: dict[str, Any] = (inspect.active() or {}) if stats else {}
    except (OperationalError, redis.RedisError, OSError):
        return None
    return [
        WorkerInfo(
            name=name,
            concurrency=(info.get("pool") or {}).get("max-concurrency"),
            processed=sum((info.get("total") or {}).values()),
            active=len(active[name]) if name in active else None,
        )
        for name, info in sorted(stats.items())
    ]
