"""The engine's connection parameters: every wait on PostgreSQL is bounded by the settings."""

import pytest

from app.db import notify, session
from app.settings import get_settings


@pytest.fixture
def configured(monkeypatch):
    def configure(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


def test_the_default_bounds_declare_a_silent_database_dead_within_ten_seconds(configured):
    configured()
    args = session.connect_args()
    assert args["connect_timeout"] == 5
    assert (args["keepalives"], args["keepalives_count"]) == (1, 3)
    probing = args["keepalives_idle"] + args["keepalives_count"] * args["keepalives_interval"]
    assert probing <= 10
    assert args["tcp_user_timeout"] == 10_000  # milliseconds


def test_the_server_gets_the_same_bounds_for_the_session(configured):
    configured(HMS_DB_DEAD_AFTER_S="4", HMS_DB_CONNECT_TIMEOUT_S="3")
    args = session.connect_args()
    assert args["connect_timeout"] == 3
    assert (args["keepalives_idle"], args["keepalives_interval"]) == (1, 1)
    assert args["options"] == (
        "-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 "
        "-c tcp_user_timeout=4000"
    )
    assert args["keepalives_idle"] + 3 * args["keepalives_interval"] <= 4


def test_the_engine_and_the_live_listener_connect_with_those_bounds(configured, monkeypatch):
    configured(HMS_DB_DEAD_AFTER_S="7", DATABASE_URL="postgresql+psycopg2://u:p@10.0.0.9/db")
    created = []
    monkeypatch.setattr(session, "create_engine", lambda url, **kw: created.append(kw) or object())
    monkeypatch.setattr(session, "_ping_idle_connections", lambda engine: None)
    monkeypatch.setattr(session, "_engines", {})
    session.get_engine()
    assert created[0]["connect_args"] == session.connect_args()
    assert created[0]["connect_args"]["tcp_user_timeout"] == 7000
    listener = notify._connect_args()
    assert listener == {**session.connect_args(), "application_name": notify.APPLICATION_NAME}


def test_bounds_below_what_libpq_and_keepalives_can_express_are_refused(configured):
    with pytest.raises(ValueError, match="db_dead_after_s"):
        configured(HMS_DB_DEAD_AFTER_S="3")
        get_settings()
    with pytest.raises(ValueError, match="db_connect_timeout_s"):
        configured(HMS_DB_DEAD_AFTER_S="10", HMS_DB_CONNECT_TIMEOUT_S="1")
        get_settings()
