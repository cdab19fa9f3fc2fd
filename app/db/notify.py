"""The database's change notifications, heard: `ChangeListener` LISTENs on the channel that the
triggers of migration 0012 NOTIFY on (the id of each run or study whose committed change a live
stream shows) and hands each batch of ids to a callback.

PostgreSQL delivers a notification only when the transaction that sent it commits, and to every
session listening at that moment: a listener that is disconnected misses what was committed
meanwhile. So the callback also gets `None`, "anything may have changed", whenever the listener
(re)connects or loses its connection: the watchers re-read their rows and nothing is missed.

One listener per API process, on its own connection (not the pool's: it is held for the
process's life and read in its own thread, blocked in `select` on the socket, which costs
nothing between notifications). It reconnects with a backoff doubling from 0.1 s to 5 s. The
driver is reached through SQLAlchemy's raw connection (psycopg2's `poll()` and `notifies`), so
this module imports no driver.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app.db.session import connect_args

log = logging.getLogger(__name__)

#: The channel migration 0012's triggers notify on; a payload is a run's or a study's id.
CHANNEL = "hms_events"
#: The name the listener's session shows in pg_stat_activity.
APPLICATION_NAME = "hms-live-listener"
#: Seconds before the first reconnection attempt, and the longest wait between two.
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.1, 5.0

#: Receives the ids whose state changed, or None: anything may have changed.
OnChange = Callable[[frozenset[str] | None], None]


def _connect_args() -> dict[str, Any]:
    """The pooled connections' bounds (session.connect_args): a listener whose database went
    silent is declared dead within `db_dead_after_s` and reconnects."""
    return {**connect_args(), "application_name": APPLICATION_NAME}


class ChangeListener:
    """Listens in a thread of its own from `start` to `stop`; `on_change` is called from that
    thread. `listening` says whether notifications are being received now."""

    def __init__(self, database_url: str, on_change: OnChange) -> None:
        self._engine = create_engine(database_url, poolclass=NullPool, connect_args=_connect_args())
        self._on_change = on_change
        self._stopping = threading.Event()
        self._stop_read, self._stop_write = os.pipe()  # wakes the select at once on stop
        self._thread = threading.Thread(target=self._run, name="hms-live-listener", daemon=True)
        self.listening = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        os.write(self._stop_write, b"x")
        self._thread.join()
        os.close(self._stop_read)
        os.close(self._stop_write)
        self._engine.dispose()

    def _run(self) -> None:
        backoff_s = FIRST_BACKOFF_S
        while not self._stopping.is_set():
            try:
                connection = self._engine.raw_connection()
            except Exception as exc:  # the server away: try again later
                log.warning("live updates: cannot connect to listen (%s)", exc)
            else:
                backoff_s = FIRST_BACKOFF_S
                try:
                    self._listen(connection.driver_connection)
                except Exception as exc:  # the connection dropped or was terminated
                    log.warning("live updates: the listening connection failed (%s)", exc)
                finally:
                    self._stopped_listening()
                    connection.close()  # a NullPool's: closed, never reused
            self._stopping.wait(backoff_s)
            backoff_s = min(2 * backoff_s, MAX_BACKOFF_S)

    def _listen(self, connection: Any) -> None:
        """LISTEN, then hand over notifications until `stop` (returns) or a failure (raises)."""
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        self.listening = True
        self._on_change(None)  # what changed while nobody listened
        while not self._stopping.is_set():
            readable, _, _ = select.select([connection, self._stop_read], [], [])
            if connection not in readable:
                continue
            connection.poll()
            ids = frozenset(notice.payload for notice in connection.notifies)
            connection.notifies.clear()
            if ids:
                self._on_change(ids)

    def _stopped_listening(self) -> None:
        if self.listening:
            self.listening = False
            self._on_change(None)  # the watchers fall back to polling
