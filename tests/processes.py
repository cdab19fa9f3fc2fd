"""Real processes for integration and end-to-end tests: Celery workers, the API under uvicorn,
Flower. Each runs as a subprocess with the test session's environment and logs to a file."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: How long a process may take to start (s): a worker took 60 s at load average 15 on 2 cores
#: (the session's first, which trains the bootstrap model), 9-25 s at 6-10.
START_TIMEOUT_S = 180
LOG_DIR = Path(tempfile.mkdtemp(prefix="hms-test-logs-"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise TimeoutError(f"{what} not reached within {timeout_s} s")


def broker_idle() -> bool:
    """No message queued or handed out and unacknowledged: none can come back."""
    import redis

    from app.settings import get_settings

    broker = redis.Redis.from_url(get_settings().require_redis_url())
    queued = sum(broker.llen(key) for key in broker.scan_iter(match="simulations*"))
    return queued == 0 and broker.hlen("unacked") == 0


class Process:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        unset: frozenset[str] = frozenset(),
    ) -> None:
        """`env` is added to the test session's environment, `unset` names are removed."""
        self.name = name
        self.log_path = LOG_DIR / f"{name}-{secrets.token_hex(3)}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self, since: int = 0) -> str:
        """Its output so far; from byte `since` on, a `log_end()` taken earlier: what it wrote
        since then (a process shared by several tests, each reading its own part)."""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_end(self) -> int:
        """Where its output ends now, in bytes."""
        return self.log_path.stat().st_size

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 20) -> None:
        """SIGTERM the group (a warm shutdown for Celery), SIGKILL what is left after timeout."""
        if self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._kill_leftovers()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, nothing gets to clean up."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(10)
        self._kill_leftovers()

    def _wait_ready(self, wait: Callable[[], None]) -> None:
        """Wait for the process to be ready; if it never is, do not leave it behind."""
        try:
            wait()
        except BaseException:
            self.kill()
            raise

    def _kill_leftovers(self) -> None:
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) == self.pid:
                    proc.kill()
            except (ProcessLookupError, psutil.Error):
                continue


class Worker(Process):
    """`celery worker` consuming the given queues."""

    def __init__(
        self,
        concurrency: int = 1,
        queues: str = "simulations,training",
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        """`wait=False` returns at once: call `wait_ready()` later (workers started together
        start up side by side)."""
        self.hostname = f"test-{secrets.token_hex(4)}@localhost"
        super().__init__(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "--queues",
                queues,
                "--concurrency",
                str(concurrency),
                "--hostname",
                self.hostname,
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            env=env,
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Until it answers a ping (killed if it never does)."""
        self._wait_ready(
            lambda: wait_until(self._answers_ping, START_TIMEOUT_S, f"worker {self.hostname}")
        )

    def _answers_ping(self) -> bool:
        from workers.celery_app import app

        if not self.alive():
            raise RuntimeError(f"worker exited early:\n{self.log()[-3000:]}")
        try:
            return bool(app.control.ping(destination=[self.hostname], timeout=0.5))
        except (OperationalError, RedisError):  # a stale connection after a broker restart
            return False

    def pool_pids(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.pid).children()]


class Api(Process):
    """The FastAPI app under uvicorn on a free port; `env` is added to the session's."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        from app.devstack.api_server import api_command

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            "api",
            api_command(self.port),
            env=env,
        )
        self._wait_ready(lambda: wait_until(self._live, START_TIMEOUT_S, "API live", every_s=0.2))

    def _live(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"API exited early:\n{self.log()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def procfile_command(name: str) -> str:
    """The shell command the Procfile gives for process `name` (what honcho would run)."""
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise KeyError(f"no process {name!r} in the Procfile")


class ProcfileProcess(Process):
    """A Procfile process run exactly as the Procfile says, through /bin/sh like honcho does."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        super().__init__(name, ["/bin/sh", "-c", procfile_command(name)], env={"PATH": path, **env})
