"""What the two embedded servers share: a data folder, a port and a password; start, stop,
crash (for fault-injection tests) and use as a context manager.

Both listen on one address, 127.0.0.1 unless told another (a host's own address in a network
namespace, app/devstack/netns.py), and require their password. A server left running by an earlier
launcher that was killed is adopted, not started twice; a stale pid file from a crash is ignored.
"""

from __future__ import annotations

import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Self

import psutil


class ServerError(RuntimeError):
    """An embedded server could not be started."""


class EmbeddedServer(ABC):
    """One server process of the dev stack, whose files live in `data_dir`."""

    def __init__(
        self, data_dir: Path, port: int, password: str, *, host: str = "127.0.0.1"
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.password = password
        self.host = host

    @property
    @abstractmethod
    def url(self) -> str:
        """How a client reaches it (SQLAlchemy or Redis URL, password included)."""

    @abstractmethod
    def start(self) -> None:
        """Start it (or adopt a running one) and return once it answers."""

    @abstractmethod
    def stop(self) -> None:
        """Shut it down cleanly and wait for the process to end."""

    @abstractmethod
    def is_running(self) -> bool: ...

    @abstractmethod
    def _pid(self) -> int | None:
        """The server's process id from its pid file; None when there is none."""

    def kill(self) -> None:
        """Crash the server (SIGKILL of its main process): for fault-injection tests."""
        pid = self._pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: has_ended(pid), 10, f"{type(self).__name__} exit")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ServerError(f"{what} did not become ready within {timeout_s:.0f} s")


def has_ended(pid: int) -> bool:
    """The process is gone, or a zombie its parent (we, for Valkey) has not reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
