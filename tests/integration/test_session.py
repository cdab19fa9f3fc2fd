"""app/db/session.py: pooled connections are pinged before use only after being idle, and
kept for reuse by as many threads as the API runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.db import session as db_session
from app.db.session import get_engine, session_scope
from app.errors import TransientStoreError


def backend_pid() -> int:
    with session_scope() as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")))


def terminate(pid: int) -> None:
    other = create_engine(get_engine().url, poolclass=NullPool)  # not the pooled connection
    with other.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def pooled_connection_killed(monkeypatch: pytest.MonkeyPatch, idle: bool) -> int:
    """Kill the backend of the connection the next session_scope gets; `idle`: as if it had
    not been used for longer than PING_IDLE_S."""
    get_engine().dispose()
    pid = backend_pid()
    terminate(pid)
    monkeypatch.setattr(db_session, "PING_IDLE_S", 0.0 if idle else 3600.0)
    return pid


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(monkeypatch):
    dropped = pooled_connection_killed(monkeypatch, idle=True)
    assert backend_pid() != dropped  # pinged, discarded, and a fresh one handed out


def test_a_recently_used_dropped_connection_fails_once_then_the_pool_is_fresh(monkeypatch):
    dropped = pooled_connection_killed(monkeypatch, idle=False)
    with pytest.raises(TransientStoreError):
        backend_pid()  # not pinged: its first statement finds it gone
    assert backend_pid() != dropped


def test_concurrent_threads_reuse_pooled_connections_instead_of_opening_new_ones():
    """As many threads as the API may run endpoints in at once keep their connections: none is
    closed on return and opened again (a new PostgreSQL backend each time)."""
    get_engine().dispose()
    threads, rounds = 10, 5
    together = threading.Barrier(threads, timeout=60)

    def work() -> set[int]:
        pids = set()
        for _ in range(rounds):
            with session_scope() as session:
                pids.add(int(session.scalar(text("SELECT pg_backend_pid()"))))
                together.wait()  # all threads hold a connection at once
            together.wait()  # and all have given it back
        return pids

    with ThreadPoolExecutor(threads) as pool:
        pids = set().union(*pool.map(lambda _: work(), range(threads)))
    assert len(pids) == threads


def test_the_server_declares_a_silent_client_dead_as_soon_as_the_client_does():
    """The bounds reach PostgreSQL as settings of each pooled session (any role may set them),
    so a cut-off worker's open transaction and its row locks do not outlive it by hours."""
    with session_scope() as session:
        shown = {
            name: session.scalar(text(f"SHOW {name}"))
            for name in ("tcp_keepalives_idle", "tcp_keepalives_count", "tcp_user_timeout")
        }
        contexts = set(
            session.scalars(
                text(
                    "SELECT context FROM pg_settings WHERE name IN "
                    "('tcp_keepalives_idle', 'tcp_keepalives_interval', "
                    "'tcp_keepalives_count', 'tcp_user_timeout')"
                )
            )
        )
    args = db_session.connect_args()
    assert shown == {
        "tcp_keepalives_idle": str(args["keepalives_idle"]),
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": str(args["tcp_user_timeout"]),  # milliseconds
    }
    assert contexts == {"user"}
