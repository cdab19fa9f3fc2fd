"""Tracing's switch: off without an endpoint (nothing installed, no span, no header), and with
one, spans exported over OTLP/HTTP to `<endpoint>/v1/traces` (a local HTTP server receives them)."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event

from api.main import create_app
from api.tracing import RequestTracing
from app.runtime import tracing
from app.settings import Settings, get_settings
from tests.otlp import Collector
from workers.tracing import publishing


@pytest.fixture(autouse=True)
def _tracing_off_afterwards() -> Iterator[None]:
    yield
    tracing.shut_down()


def test_without_an_endpoint_nothing_is_installed(monkeypatch):
    monkeypatch.setattr(get_settings(), "otlp_endpoint", "")
    assert tracing.configure_tracing("hms-api") is False
    assert tracing.tracer() is None
    assert not event.contains(Engine, "before_cursor_execute", tracing._statement_starts)
    middleware = [entry.cls for entry in create_app().user_middleware]
    assert RequestTracing not in middleware
    headers = {"hms_request_id": "r1"}
    with publishing("hms.run_simulation", "simulations", "t1", headers) as sent:
        assert sent is headers  # no span, no traceparent


def test_the_hms_endpoint_setting_wins_over_the_standard_one(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://standard:4318")
    assert Settings().otlp_endpoint == "http://standard:4318"
    monkeypatch.setenv("HMS_OTLP_ENDPOINT", "http://ours:4318")
    assert Settings().otlp_endpoint == "http://ours:4318"


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.stop()


def test_with_an_endpoint_spans_go_to_its_v1_traces_over_otlp_http(monkeypatch, collector):
    monkeypatch.setattr(get_settings(), "otlp_endpoint", collector.url)
    monkeypatch.setattr(get_settings(), "otel_service_name", "hms-api-eu")
    assert tracing.configure_tracing("hms-api") is True
    assert tracing.configure_tracing("hms-api") is True  # once per process
    active = tracing.tracer()
    assert active is not None
    with active.start_as_current_span("one"):
        pass
    tracing.shut_down()  # flushes the batch

    assert tracing.tracer() is None
    [(path, content_type, _)] = collector.posts
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    [(service, span)] = collector.spans()
    assert service == "hms-api-eu" and span.name == "one"
