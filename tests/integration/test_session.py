"""app/db/session.py: pooled connections are pinged before use only after being idle, and
kept for reuse by as many threads as the API runs."""

from __future__ import annotations

import os
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


def test_a_forked_process_keeps_the_prepared_engine_with_a_pool_of_its_own():
    """What a worker's pool process does (workers/signals.py): the main process prepared the
    engine before forking, without connecting; the child disposes of the pool it inherited and
    connects afresh on the same engine, whose pool listeners (the idle ping's) still run; the
    parent's pooled connection is left open for the parent."""
    get_engine().dispose()
    db_session.prepare_before_fork()
    engine = get_engine()
    assert engine.pool.checkedin() == 0  # preparing opened no connection
    parent = backend_pid()  # now the parent's pool holds one
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:
            db_session.dispose_engines()
            pid = backend_pid()
            with get_engine().connect() as connection:  # checked in once: the listener noted it
                noted = "checked_in" in connection.connection._connection_record.info
            report = f"{get_engine() is engine} {pid} {noted}"
        except BaseException as exc:
            report = repr(exc)
        os.write(write, report.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        same, pid, noted = pipe.read().split()
    os.waitpid(child, 0)
    assert same == "True" and int(pid) != parent and noted == "True"
    assert backend_pid() == parent  # the child did not close the parent's connection
