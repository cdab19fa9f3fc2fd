"""Prometheus metrics of the API: requests by route template and status (recorded by
api/telemetry.py), and what the database and the broker hold, computed at scrape time.

`GET /metrics` answers only a scraper presenting `Authorization: Bearer <HMS_METRICS_TOKEN>`
(401 otherwise); without a token configured the route does not exist (404).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Annotated

import redis
from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from api.web import broker
from app.db.models import (
    JobStatus,
    LifecycleStatus,
    Run,
    RunStatus,
    Study,
    StudyStatus,
    TrainingJob,
    Work,
)
from app.db.session import session_scope
from app.errors import TransientStoreError
from app.settings import get_settings

log = logging.getLogger(__name__)

#: Request latency buckets (s): the API's answers take milliseconds; the top ones catch a stall.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The route label of a request no route matched (a scanner's path must not become a series).
UNMATCHED = "<unmatched>"


class HttpMetrics:
    """Request counts and latencies, in the app's own registry (one per app: tests make many)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter(
            "hms_http_requests", "HTTP requests answered.", labels, registry=registry
        )
        self.latency = Histogram(
            "hms_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer (s).",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status_code: int, seconds: float) -> None:
        labels = (method, route, str(status_code))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


class StoreCollector(Collector):
    """Gauges read at scrape time: work by status (one GROUP BY per table), the age of the
    oldest queued run, each queue's depth per priority step, and whether each source answered
    (`hms_metrics_source_up`): a scrape with the database down still reports the broker."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "hms_metrics_source_up", "1 if the source answered this scrape.", labels=["source"]
        )
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except (SQLAlchemyError, TransientStoreError):
            log.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric(["database"], 0)
        try:
            yield self._queue_depth()
            up.add_metric(["broker"], 1)
        except (redis.RedisError, OSError):
            log.warning("metrics: the broker did not answer", exc_info=True)
            up.add_metric(["broker"], 0)
        yield up

    def _database(self) -> Iterable[Metric]:
        tables: list[tuple[str, str, type[Work], type[LifecycleStatus]]] = [
            ("hms_runs", "Runs by status.", Run, RunStatus),
            ("hms_studies", "Studies by status.", Study, StudyStatus),
            ("hms_retrain_jobs", "Retraining jobs by status.", TrainingJob, JobStatus),
        ]
        families = []
        with session_scope() as session:
            for name, documentation, model, statuses in tables:
                counts = dict(
                    session.execute(select(model.status, func.count()).group_by(model.status)).all()
                )
                family = GaugeMetricFamily(name, documentation, labels=["status"])
                for known in statuses:
                    family.add_metric([known.value], counts.pop(known.value, 0))
                for other, count in counts.items():  # a status added later still shows
                    family.add_metric([other], count)
                families.append(family)
            oldest = session.execute(
                select(func.extract("epoch", func.now() - func.min(Run.created_at))).where(
                    Run.status == RunStatus.QUEUED
                )
            ).scalar_one()
        age = GaugeMetricFamily(
            "hms_oldest_queued_run_age_seconds",
            "How long the oldest queued run has waited (s); 0 when none waits.",
        )
        age.add_metric([], float(oldest or 0.0))
        return [*families, age]

    def _queue_depth(self) -> Metric:
        family = GaugeMetricFamily(
            "hms_queue_depth",
            "Messages waiting in a queue at a priority (0..9, 9 the most urgent).",
            labels=["queue", "priority"],
        )
        for queue in broker.broker_state().queues:
            for priority, depth in queue.by_priority.items():
                family.add_metric([queue.queue, str(priority)], depth)
        return family


def api_registry() -> tuple[CollectorRegistry, HttpMetrics]:
    """A registry with the request metrics, the store gauges and the process' own metrics."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(StoreCollector())
    return registry, HttpMetrics(registry)


def check_scraper(authorization: str | None) -> None:
    """404 when no token is configured (nothing to scrape), 401 without the right bearer."""
    token = get_settings().metrics_token
    if not token:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Not Found")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), token.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="metrics need Authorization: Bearer <HMS_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, authorization: Annotated[str | None, Header()] = None) -> Response:
    check_scraper(authorization)
    started = time.perf_counter()
    body = generate_latest(request.app.state.metrics_registry)
    log.debug("metrics collected in %.3f s", time.perf_counter() - started)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
