"""Traces with an in-memory exporter, against the real database and broker: the API's request
span, the publish span whose context the message carries, and the task that continues it
(executed in-process, eagerly, through the worker's real task_prerun / task_postrun receivers)."""

import json

import pytest
import redis
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode

import workers.signals  # noqa: F401  (connects the receivers an eager task goes through)
from api.main import create_app
from app.settings import get_settings
from tests.conftest import EXAMPLE_SPEC, TEST_API_KEY
from workers.tasks import run_simulation


@pytest.fixture
def client(spans):
    with TestClient(create_app(), headers={"X-API-Key": TEST_API_KEY}) as client:
        yield client


def submit(client: TestClient) -> str:
    response = client.post("/api/v1/runs", json=EXAMPLE_SPEC, headers={"X-Request-ID": "req-t1"})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def message_headers(run_id: str) -> dict:
    """The headers of the run's message, read from the broker's queue lists (no worker runs)."""
    broker = redis.Redis.from_url(get_settings().require_redis_url())
    for key in broker.scan_iter(match="simulations*"):
        for raw in broker.lrange(key, 0, -1):
            message = json.loads(raw)
            if message["headers"]["id"] == run_id:
                return message["headers"]
    raise AssertionError(f"no message for run {run_id}")


def only(spans, kind: SpanKind, name: str):
    found = [span for span in spans.get_finished_spans() if span.kind == kind and span.name == name]
    assert len(found) == 1, [(span.kind, span.name) for span in spans.get_finished_spans()]
    return found[0]


def children(spans, parent) -> list:
    return [
        span
        for span in spans.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def test_a_submission_traces_the_request_the_publish_and_puts_the_context_in_the_message(
    spans, client, clean_state
):
    run_id = submit(client)

    server = only(spans, SpanKind.SERVER, "POST /api/v1/runs")
    assert server.attributes["http.route"] == "/api/v1/runs"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.response.status_code"] == 202
    assert server.attributes["hms.tenant"] == "tests"
    assert server.attributes["hms.request_id"] == "req-t1"

    producer = only(spans, SpanKind.PRODUCER, "send hms.run_simulation")
    assert producer.context.trace_id == server.context.trace_id
    assert producer.parent.span_id == server.context.span_id
    assert producer.attributes["messaging.message.id"] == run_id
    assert producer.attributes["messaging.destination.name"] == "simulations"

    # The run's row was inserted inside the request's span.
    statements = [span for span in children(spans, server) if span.kind == SpanKind.CLIENT]
    assert any(span.name == "INSERT" and "runs" in span.attributes["db.query.text"]
               for span in statements)  # fmt: skip
    assert all(span.attributes["db.system.name"] == "postgresql" for span in statements)

    headers = message_headers(run_id)
    _, trace_id, span_id, _ = headers["traceparent"].split("-")
    assert int(trace_id, 16) == producer.context.trace_id
    assert int(span_id, 16) == producer.context.span_id
    assert headers["hms_request_id"] == "req-t1"


def test_a_task_continues_the_trace_its_message_carries(spans, client, clean_state):
    run_id = submit(client)
    headers = message_headers(run_id)
    producer = only(spans, SpanKind.PRODUCER, "send hms.run_simulation")

    result = run_simulation.apply(args=[run_id], task_id=run_id, headers=headers)
    assert result.successful(), result.traceback
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded"

    consumer = only(spans, SpanKind.CONSUMER, "process hms.run_simulation")
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.attributes["hms.run_id"] == run_id
    assert consumer.attributes["hms.task_id"] == run_id
    assert consumer.attributes["hms.request_id"] == "req-t1"
    assert consumer.attributes["celery.state"] == "SUCCESS"

    # The run's claim and its results are statements of the task's span.
    statements = [span for span in children(spans, consumer) if span.kind == SpanKind.CLIENT]
    texts = [span.attributes["db.query.text"] for span in statements]
    assert any(text.startswith("UPDATE runs") for text in texts), texts
    assert any(text.startswith("INSERT INTO run_results") for text in texts), texts


def test_an_unhandled_error_is_an_error_span_with_the_exception(spans):
    app = create_app()

    @app.get("/boom/{part}")
    def boom(part: str) -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/boom/1").status_code == 500

    server = only(spans, SpanKind.SERVER, "GET /boom/{part}")
    assert server.status.status_code == StatusCode.ERROR
    assert server.attributes["http.response.status_code"] == 500
    assert [event.attributes["exception.type"] for event in server.events] == ["RuntimeError"]
