"""The engine and the one unit-of-work helper, `session_scope`.

Connection-level failures (server down, connection dropped) surface as `TransientStoreError`,
which the API maps to 503 and the workers to a retry with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, configure_mappers

from app.errors import TransientStoreError
from app.settings import get_settings

_engines: dict[str, Engine] = {}
_ASYNCHRONOUS_COMMIT = text("SET LOCAL synchronous_commit TO OFF")
_SYNCHRONOUS_COMMIT = text("SET LOCAL synchronous_commit TO DEFAULT")
#: A pooled connection unused for longer than this (seconds) is pinged before it is handed out.
#: pool_pre_ping pinged at every checkout: one more round trip per transaction (2 of a POST's
#: 7, 1 of a GET's 3), each one more wake-up of a PostgreSQL backend on a loaded machine. A
#: connection used within the last second is handed out as it is: if the server went away
#: meanwhile, its first statement fails, which invalidates the whole pool (one 503 or one task
#: retry per process) — the same one failure a request in flight at the crash gets anyway.
PING_IDLE_S = 1.0


def get_engine() -> Engine:
    """The process's engine for the configured DATABASE_URL, created on first use."""
    settings = get_settings()
    url = settings.require_database_url()
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = create_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=10,
            connect_args=connect_args(),
        )
        _ping_idle_connections(engine)
    return engine


#: Keepalive probes sent before a silent peer is declared dead (libpq's and PostgreSQL's count).
KEEPALIVE_PROBES = 3


def connect_args() -> dict[str, Any]:
    """libpq's connection parameters that bound every wait on the network (settings
    `db_connect_timeout_s`, `db_dead_after_s`; the reasons are in app/settings.py).

    Both ends of the connection get the same bound: libpq's own keepalives and TCP user timeout
    make the client's statement fail, and the `options` set PostgreSQL's for this session (they
    are per-session settings any role may change), so the server ends the session of a client
    it no longer hears, with the row locks its open transaction holds. Keepalives cover a
    connection waiting for an answer (nothing unacknowledged in flight); the TCP user timeout
    covers data sent and never acknowledged. The probes fill (about) the second half of the
    bound: dead within `db_dead_after_s` either way."""
    settings = get_settings()
    dead_after = settings.db_dead_after_s
    interval = max(1, dead_after // (2 * KEEPALIVE_PROBES))
    idle = dead_after - KEEPALIVE_PROBES * interval  # settings: dead_after >= 4, so idle >= 1
    server = {
        "tcp_keepalives_idle": idle,
        "tcp_keepalives_interval": interval,
        "tcp_keepalives_count": KEEPALIVE_PROBES,
        "tcp_user_timeout": dead_after * 1000,  # milliseconds
    }
    return {
        "connect_timeout": settings.db_connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": KEEPALIVE_PROBES,
        "tcp_user_timeout": dead_after * 1000,
        "options": " ".join(f"-c {name}={value}" for name, value in server.items()),
    }


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a connection before use if it was idle for PING_IDLE_S or more (or is new); a
    failed ping makes the pool discard it and hand out a fresh one."""

    @event.listens_for(engine, "checkin")
    def _note_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in", float("-inf")) < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc


def prepare_before_fork() -> None:
    """In a process about to fork pool processes (the worker's main, before its pool starts):
    configure the ORM's mappers and create the engine, importing its driver, once here instead
    of in each pool process at its first task (~8 and ~12 ms of CPU, measured 2026-12-07 on
    this project's 2-core VM). Opens no connection: none crosses the fork."""
    configure_mappers()
    get_engine()


def dispose_engines() -> None:
    """Forget pooled connections, e.g. in a freshly forked worker process: each engine gets a
    new, empty pool (SQLAlchemy's recipe for fork), and keeps what it holds besides them."""
    for engine in _engines.values():
        engine.dispose(close=False)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@contextmanager
def session_scope(*, durable: bool = True) -> Iterator[Session]:
    """One transaction: commits when the block ends, rolls back if it raises.

    `durable=False` commits without waiting for the WAL flush (PostgreSQL's asynchronous commit,
    `synchronous_commit = off` for this transaction): about 1 ms instead of 3.7 ms on this
    project's VM, where each durable commit waits for an fsync. The commit is atomic and visible
    at once, and flushed within about 0.6 s (3 x wal_writer_delay) or by the next durable commit
    of any session, whichever is first; only a crash of the database server in between loses it.
    Use it only for writes whose loss something else makes good (the recovery sweep, a retry)."""
    session = Session(get_engine(), expire_on_commit=False)
    try:
        if not durable:
            session.execute(_ASYNCHRONOUS_COMMIT)
        yield session
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        if is_transient(exc):
            raise TransientStoreError("database", str(exc.orig).strip()) from exc
        raise
    except PoolTimeout as exc:
        session.rollback()
        raise TransientStoreError("database", "no connection available in the pool") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def make_durable(session: Session) -> None:
    """Make the transaction of a `session_scope(durable=False)` wait for the WAL flush after
    all, as a durable one does (what decides is the setting when it commits)."""
    session.execute(_SYNCHRONOUS_COMMIT)


def ping_database() -> None:
    """Raise TransientStoreError unless the database answers."""
    with session_scope() as session:
        session.execute(text("SELECT 1"))
