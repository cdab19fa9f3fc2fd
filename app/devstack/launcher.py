"""`hms up` (what `make run` calls): the whole system on one machine.

Starts the embedded PostgreSQL and Valkey unless DATABASE_URL / REDIS_URL are set, runs
`alembic upgrade head`, then runs the Procfile's processes under honcho. Ctrl-C stops every
process, then the servers this launcher started (or adopted from a killed earlier launcher).
One launcher per data folder: a second one, which would adopt the first one's servers and stop
them when its own processes fail to bind their ports, refuses to start.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import httpx

from app.devstack.credentials import DevCredentials
from app.devstack.postgres import EmbeddedPostgres
from app.devstack.valkey import EmbeddedValkey
from app.settings import Settings, get_settings, parse_bootstrap_keys

#: The checkout: where the Procfile and alembic.ini are.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
HONCHO_INTERRUPTED = 130
LOCK_FILE = "up.lock"


def up() -> int:
    started = time.monotonic()
    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock_data_dir(data_dir)
    if lock is None:
        holder = (data_dir / LOCK_FILE).read_text().strip() or "?"
        _say(
            f"another `hms up` (pid {holder}) is running with {data_dir}: stop it first, or "
            "give this one its own HMS_DATA_DIR and ports"
        )
        return 1
    credentials = DevCredentials.load_or_create(data_dir)
    with lock, ExitStack() as servers:
        database_url = settings.database_url
        if not database_url:
            postgres = EmbeddedPostgres(
                data_dir / "postgres",
                settings.embedded_postgres_port,
                credentials.postgres_password,
            )
            _say(f"starting embedded PostgreSQL on 127.0.0.1:{postgres.port} ({postgres.data_dir})")
            postgres.start()
            servers.callback(_stop, "PostgreSQL", postgres.stop)
            database_url = postgres.url
        redis_url = settings.redis_url
        if not redis_url:
            valkey = EmbeddedValkey(
                data_dir / "valkey", settings.embedded_redis_port, credentials.redis_password
            )
            _say(f"starting embedded Valkey on 127.0.0.1:{valkey.port} ({valkey.data_dir})")
            valkey.start()
            servers.callback(_stop, "Valkey", valkey.stop)
            redis_url = valkey.url
        env = _child_environment(settings, credentials, database_url, redis_url)
        _say("alembic upgrade head")
        if not _migrate(env):
            return 1
        return _run_procfile(env, settings, started)


def _lock_data_dir(data_dir: Path) -> IO[str] | None:
    """The data folder's lock file, locked for as long as it stays open and holding this
    process's pid; None if another process holds it. The kernel releases the lock when its
    holder exits, however it exits; the file is not inherited by the launched processes."""
    lock = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _migrate(env: dict[str, str]) -> bool:
    """`alembic upgrade head` in its own process, as an operator would run it: the launcher is
    dev tooling and does not import the database layer (an import-linter contract)."""
    alembic = [sys.executable, "-m", "alembic", "-c", str(PROJECT_ROOT / "alembic.ini")]
    done = subprocess.run([*alembic, "upgrade", "head"], env=env, cwd=PROJECT_ROOT)
    if done.returncode != 0:
        _say(f"alembic upgrade head failed (exit {done.returncode}); see its output above")
    return done.returncode == 0


def _child_environment(
    settings: Settings, credentials: DevCredentials, database_url: str, redis_url: str
) -> dict[str, str]:
    """The processes' environment: values set by the user win over the dev defaults."""
    # The Procfile's commands (uvicorn, celery) live next to this interpreter, in the virtualenv
    # `make run` created, which need not be activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        **os.environ,
        "PATH": path,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        # The dev key is an admin key: the developer runs the whole system.
        "HMS_API_KEYS": settings.api_keys or f"dev:{credentials.api_key}:admin",
        "FLOWER_BASIC_AUTH": settings.flower_basic_auth or credentials.flower_basic_auth,
        "HMS_DATA_DIR": str(settings.data_dir.resolve()),
        "HMS_API_PORT": str(settings.api_port),
        "HMS_FLOWER_PORT": str(settings.flower_port),
        "PYTHONUNBUFFERED": "1",
    }


def _run_procfile(env: dict[str, str], settings: Settings, started: float) -> int:
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(PROJECT_ROOT / "Procfile")]
    # Ctrl-C reaches honcho (same terminal) which stops its processes; this launcher only waits
    # for that, then stops the servers.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = subprocess.Popen(honcho, env=env, cwd=PROJECT_ROOT)
        # A SIGTERM (a service manager stopping us) is passed on: honcho stops the processes.
        signal.signal(signal.SIGTERM, lambda *_: process.terminate())
        banner = threading.Thread(
            target=_announce_when_ready,
            args=(process, env, settings, started),
            daemon=True,
        )
        banner.start()
        code = process.wait()
        # honcho exits 130 when stopped by Ctrl-C: the normal way to stop, not a failure.
        return 0 if code == HONCHO_INTERRUPTED else code
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _announce_when_ready(
    process: subprocess.Popen[bytes],
    env: dict[str, str],
    settings: Settings,
    started: float,
) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/health/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        return
    first = parse_bootstrap_keys(env["HMS_API_KEYS"])[0]
    role = "admin key" if first.is_admin else "key"
    flower_user = env["FLOWER_BASIC_AUTH"]
    lines = [
        f"ready after {time.monotonic() - started:.1f} s",
        f"Dashboard: {api}/  (log in with the API key below)",
        f"API docs:  {api}/docs",
        f"Flower:    http://127.0.0.1:{settings.flower_port}  (basic auth {flower_user})",
        f"API key:   X-API-Key: {first.key}  ({role} of tenant {first.name!r})",
        f"dev credentials are kept in {Path(settings.data_dir) / 'credentials.json'}",
        "Ctrl-C stops everything.",
    ]
    width = max(map(len, lines))
    print("\n".join(["", "=" * width, *lines, "=" * width, ""]), flush=True)


def _say(message: str) -> None:
    print(f"hms up: {message}", flush=True)


def _stop(name: str, stop: Callable[[], None]) -> None:
    _say(f"stopping {name}")
    stop()
