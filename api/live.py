"""Wakes the live streams of this API process when the database announces a change of what they
watch (app/db/notify.py hears it in its own thread; here it becomes an `asyncio.Event` set on the
event loop). A stream waits for its event or for its fallback poll, whichever comes first:
`live_safety_poll_s` while the listener listens, `live_poll_s` while it does not (it is down,
reconnecting, or `HMS_LIVE_NOTIFY=false`), so a missed notification delays an event, never loses
it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from app.db.notify import ChangeListener
from app.settings import get_settings


class LiveChanges:
    """The process's watchers by id, and the listener that wakes them (while the app runs)."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._listener: ChangeListener | None = None

    @property
    def fallback_s(self) -> float:
        """Seconds a stream waits for a notification before it reads its row anyway."""
        settings = get_settings()
        if self._listener is not None and self._listener.listening:
            return settings.live_safety_poll_s
        return settings.live_poll_s

    @contextmanager
    def watching(self, subject_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set whenever `subject_id` may have changed; the caller clears it."""
        key = str(subject_id)
        changed = asyncio.Event()
        self._watchers.setdefault(key, set()).add(changed)
        try:
            yield changed
        finally:
            watchers = self._watchers[key]
            watchers.discard(changed)
            if not watchers:
                del self._watchers[key]

    @asynccontextmanager
    async def listened(self) -> AsyncIterator[None]:
        """The listener runs inside this block (none with `HMS_LIVE_NOTIFY=false`)."""
        settings = get_settings()
        if not settings.live_notify:
            yield
            return
        loop = asyncio.get_running_loop()

        def wake_from_thread(ids: frozenset[str] | None) -> None:
            loop.call_soon_threadsafe(self._wake, ids)

        listener = ChangeListener(settings.require_database_url(), wake_from_thread)
        listener.start()
        self._listener = listener
        try:
            yield
        finally:
            self._listener = None
            listener.stop()

    def _wake(self, ids: frozenset[str] | None) -> None:
        """On the event loop: set the events of `ids`' watchers (of all, for None)."""
        if ids is None:
            woken = list(self._watchers.values())
        else:
            woken = [self._watchers[key] for key in ids if key in self._watchers]
        for watchers in woken:
            for changed in watchers:
                changed.set()


#: The one per process.
live_changes = LiveChanges()
