"""Tracing with real processes: the API under uvicorn and a prefork worker export to a stand-in
OTLP collector; one run's trace goes from the request through the publish to the pool process's
task and its statements."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import EXAMPLE_SPEC, TEAM_A_KEY, Servers, empty_queues, empty_tables
from tests.otlp import Collector, attributes
from tests.processes import Api, Worker, wait_until

SMALL_SPEC = {**EXAMPLE_SPEC, "workload": {"kind": "synthetic", "num_tasks": 500, "seed": 1}}


@pytest.fixture(scope="module")
def exported(servers: Servers) -> Iterator[tuple[Collector, str]]:
    """The collector, once a run submitted to a traced API succeeded on a traced worker and
    both processes stopped (which sends the spans they still batched); and the run's id."""
    empty_tables()
    empty_queues(servers.redis_url)
    collector = Collector()
    traced = {"HMS_OTLP_ENDPOINT": collector.url}
    worker = Worker(concurrency=1, env=traced)
    api = Api(env=traced)
    try:
        with httpx.Client(base_url=api.url, headers={"X-API-Key": TEAM_A_KEY}) as http:
            response = http.post("/api/v1/runs", json=SMALL_SPEC)
            assert response.status_code == 202, response.text
            run_id = response.json()["id"]
            wait_until(
                lambda: http.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded",
                120,
                "the run succeeded",
                every_s=0.2,
            )
    finally:
        api.stop()
        worker.stop()
    yield collector, run_id
    collector.stop()


def one(spans: list[tuple[str, Span]], service: str, kind: int, name: str) -> Span:
    found = [s for svc, s in spans if svc == service and s.kind == kind and s.name == name]
    assert len(found) == 1, [(svc, s.name) for svc, s in spans]
    return found[0]


def test_one_trace_goes_from_the_request_to_the_workers_statements(exported):
    collector, run_id = exported
    spans = collector.spans()
    server = one(spans, "hms-api", Span.SPAN_KIND_SERVER, "POST /api/v1/runs")
    producer = one(spans, "hms-api", Span.SPAN_KIND_PRODUCER, "send hms.run_simulation")
    consumer = one(spans, "hms-worker", Span.SPAN_KIND_CONSUMER, "process hms.run_simulation")

    assert producer.parent_span_id == server.span_id
    assert consumer.parent_span_id == producer.span_id
    assert server.trace_id == producer.trace_id == consumer.trace_id
    assert attributes(server)["hms.tenant"] == "team-a"
    assert attributes(consumer)["hms.run_id"] == run_id

    worker_statements = [
        attributes(s)["db.query.text"]
        for svc, s in spans
        if svc == "hms-worker" and s.parent_span_id == consumer.span_id
    ]
    assert any(str(text).startswith("INSERT INTO run_results") for text in worker_statements)
