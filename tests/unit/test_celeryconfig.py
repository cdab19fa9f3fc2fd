"""The Celery configuration's promises (pure values, no broker)."""

import pytest

import celeryconfig


def test_api_priority_9_is_the_redis_transports_first_step():
    assert celeryconfig.broker_priority(9) == 0
    assert celeryconfig.broker_priority(0) == 9
    assert [celeryconfig.broker_priority(p) for p in range(10)] == list(range(9, -1, -1))
    with pytest.raises(ValueError):
        celeryconfig.broker_priority(10)


def test_a_message_without_priority_does_not_jump_the_queue():
    assert celeryconfig.task_default_priority == celeryconfig.broker_priority(5)
    assert celeryconfig.broker_transport_options["priority_steps"] == list(range(10))


def test_json_only_and_at_least_once_delivery():
    assert celeryconfig.accept_content == ["json"] == celeryconfig.result_accept_content
    assert celeryconfig.task_serializer == celeryconfig.result_serializer == "json"
    assert celeryconfig.task_acks_late and celeryconfig.task_reject_on_worker_lost
    assert celeryconfig.worker_prefetch_multiplier == 1


def test_time_limits_come_from_settings():
    assert (
        celeryconfig.broker_transport_options["visibility_timeout"] > celeryconfig.task_time_limit
    )
    assert celeryconfig.task_soft_time_limit < celeryconfig.task_time_limit


def test_queues_and_routes():
    assert {queue.name for queue in celeryconfig.task_queues} == {"simulations", "training"}
    assert celeryconfig.task_routes["hms.run_simulation"]["queue"] == "simulations"
    assert celeryconfig.worker_send_task_events and celeryconfig.task_send_sent_event


def test_beat_applies_retention_nightly_only_when_it_is_set(monkeypatch):
    import importlib

    from app.settings import get_settings

    assert "delete-old-runs" not in celeryconfig.beat_schedule  # off by default
    monkeypatch.setenv("HMS_RETENTION_DAYS", "90")
    get_settings.cache_clear()
    try:
        configured = importlib.reload(celeryconfig)
        entry = configured.beat_schedule["delete-old-runs"]
        assert entry["task"] == "hms.apply_retention"
        assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})
        assert configured.task_routes["hms.apply_retention"]["queue"] == "simulations"
    finally:
        monkeypatch.delenv("HMS_RETENTION_DAYS")
        get_settings.cache_clear()
        importlib.reload(celeryconfig)


def test_every_redis_wait_is_bounded_by_the_settings(monkeypatch):
    import importlib

    from app.settings import get_settings

    monkeypatch.setenv("HMS_REDIS_SOCKET_TIMEOUT_S", "3")
    monkeypatch.setenv("HMS_REDIS_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("HMS_REDIS_HEALTH_CHECK_S", "4")
    get_settings.cache_clear()
    try:
        configured = importlib.reload(celeryconfig)
        options = configured.broker_transport_options
        assert (options["socket_timeout"], options["socket_connect_timeout"]) == (3, 2)
        assert options["health_check_interval"] == 4
        # The result backend (PROGRESS, task states) is a client of its own: Celery's defaults
        # would wait 120 s on a dead connection and forever to connect.
        assert (configured.redis_socket_timeout, configured.redis_socket_connect_timeout) == (3, 2)
        assert configured.redis_backend_health_check_interval == 4
        assert configured.worker_cancel_long_running_tasks_on_connection_loss is False
    finally:
        for name in ("SOCKET_TIMEOUT_S", "CONNECT_TIMEOUT_S", "HEALTH_CHECK_S"):
            monkeypatch.delenv(f"HMS_REDIS_{name}")
        get_settings.cache_clear()
        importlib.reload(celeryconfig)
