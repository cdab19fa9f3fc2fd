"""`hms up` (what `make run` calls): the whole system on one machine.

Starts the embedded PostgreSQL and Valkey unless DATABASE_URL / REDIS_URL are set, runs
`alembic upgrade head`, then runs the Procfile's processes under honcho's process manager, in
this process so that their output goes through app/devstack/output.py (one JSON object per line
with HMS_LOG_FORMAT=json). Ctrl-C stops every process, then the servers this launcher started
(or adopted from a killed earlier launcher).
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
from datetime import datetime
from pathlib import Path
from typing import IO

import httpx
from honcho.environ import expand_processes, parse, parse_procfile
from honcho.manager import Manager
from honcho.printer import Message

from app.devstack.credentials import DevCredentials
from app.devstack.output import LauncherOutput
from app.devstack.postgres import EmbeddedPostgres
from app.devstack.valkey import EmbeddedValkey
from app.settings import Settings, get_settings, parse_bootstrap_keys

#: The checkout: where the Procfile and alembic.ini are.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
HONCHO_INTERRUPTED = 130  # honcho's return code after SIGINT
LOCK_FILE = "up.lock"


def up() -> int:
    started = time.monotonic()
    settings = get_settings()
    output = LauncherOutput(settings.log_format, sys.stdout)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock_data_dir(data_dir)
    if lock is None:
        holder = (data_dir / LOCK_FILE).read_text().strip() or "?"
        output.say(
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
            output.say(
                f"starting embedded PostgreSQL on 127.0.0.1:{postgres.port} ({postgres.data_dir})"
            )
            postgres.start()
            servers.callback(_stop, output, "PostgreSQL", postgres.stop)
            database_url = postgres.url
        redis_url = settings.redis_url
        if not redis_url:
            valkey = EmbeddedValkey(
                data_dir / "valkey", settings.embedded_redis_port, credentials.redis_password
            )
            output.say(f"starting embedded Valkey on 127.0.0.1:{valkey.port} ({valkey.data_dir})")
            valkey.start()
            servers.callback(_stop, output, "Valkey", valkey.stop)
            redis_url = valkey.url
        env = _child_environment(settings, credentials, database_url, redis_url)
        output.say("alembic upgrade head")
        if not _migrate(env, output):
            return 1
        return _run_procfile(env, settings, started, output)


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


def _migrate(env: dict[str, str], output: LauncherOutput) -> bool:
    """`alembic upgrade head` in its own process, as an operator would run it: the launcher is
    dev tooling and does not import the database layer (an import-linter contract). Its output
    is the `migrate` process's lines."""
    alembic = [sys.executable, "-m", "alembic", "-c", str(PROJECT_ROOT / "alembic.ini")]
    with subprocess.Popen(
        [*alembic, "upgrade", "head"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            output.write(Message("line", line, datetime.now(), "migrate", None))
    if process.returncode != 0:
        output.say(f"alembic upgrade head failed (exit {process.returncode}); see its output above")
    return process.returncode == 0


def _child_environment(
    settings: Settings, credentials: DevCredentials, database_url: str, redis_url: str
) -> dict[str, str]:
    """The processes' environment: values set by the user win over the dev defaults."""
    # The Procfile's commands (uvicorn, celery) live next to this interpreter, in the virtualenv
    # `make run` created, which need not be activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        **os.environ,
        **_as_root_warnings(),
        "PATH": path,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        # The dev key is an admin key: the developer runs the whole system.
        "HMS_API_KEYS": settings.api_keys or f"dev:{credentials.api_key}:admin",
        "FLOWER_BASIC_AUTH": settings.flower_basic_auth or credentials.flower_basic_auth,
        "HMS_DATA_DIR": str(settings.data_dir.resolve()),
        "HMS_API_PORT": str(settings.api_port),
        "HMS_FLOWER_PORT": str(settings.flower_port),
        # Without a token /metrics answers 404; the banner says how to scrape it.
        "HMS_METRICS_TOKEN": settings.metrics_token or credentials.metrics_token,
        "PYTHONUNBUFFERED": "1",
    }


#: What Celery's worker warns (a SecurityWarning, a UserWarning) on every start as root.
ROOT_WARNING = "You're running the worker with superuser privileges"


def _as_root_warnings() -> dict[str, str]:
    """When the launcher runs as root (a container, CI), so do the processes it starts: a dev
    stack has no other user to drop to (the image runs as its own user, Dockerfile's USER), and
    Celery's warning would repeat that on every start. Its one message is ignored, in the worker
    started here only: a worker started as root anywhere else still says so."""
    if os.geteuid() != 0:
        return {}
    ignore = f"ignore:{ROOT_WARNING}:UserWarning"
    return {"PYTHONWARNINGS": ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), ignore]))}


def _run_procfile(
    env: dict[str, str], settings: Settings, started: float, output: LauncherOutput
) -> int:
    processes = Manager(printer=output)
    procfile = parse_procfile((PROJECT_ROOT / "Procfile").read_text())
    # What `honcho start` would add: HONCHO_PROCESS_NAME and the project's .env, if any.
    dot_env = PROJECT_ROOT / ".env"
    app_env = parse(dot_env.read_text()) if dot_env.exists() else {}
    for process in expand_processes(procfile.processes, env=app_env):
        processes.add_process(
            process.name, process.cmd, env={**env, **process.env}, cwd=str(PROJECT_ROOT)
        )
    banner = threading.Thread(
        target=_announce_when_ready,
        args=(processes, env, settings, started, output),
        daemon=True,
    )
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    banner.start()
    try:
        # Until a process exits; Ctrl-C and SIGTERM (a service manager stopping us) make honcho
        # stop the processes. Each runs in its own session: Ctrl-C reaches them only this way.
        processes.loop()
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    # honcho says 130 when stopped by Ctrl-C: the normal way to stop, not a failure.
    code = int(processes.returncode)
    return 0 if code == HONCHO_INTERRUPTED else code


#: What the banner says of Flower while it is not answering yet, and how long it watches for it
#: (the Procfile's Flower waits up to 60 x (1 s ping + 2 s) for a worker).
FLOWER_STARTING = "not answering yet: it starts once a worker answers, and a line follows then"
FLOWER_WAIT_S = 200


def _announce_when_ready(
    processes: Manager,
    env: dict[str, str],
    settings: Settings,
    started: float,
    output: LauncherOutput,
) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    deadline = time.monotonic() + 120
    # honcho sets the return code when the first process stops or a signal arrives
    while processes.returncode is None and time.monotonic() < deadline:
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
    flower = f"http://127.0.0.1:{settings.flower_port}"
    flower_up = _answers(flower)
    # The Procfile starts Flower once a worker answers a ping: on a first start the worker is
    # compiling the simulator and Flower's address is refused for a while (45 s on 2 cores).
    starting = "" if flower_up else f"; {FLOWER_STARTING}"
    lines = [
        f"ready after {time.monotonic() - started:.1f} s",
        f"Dashboard: {api}/  (log in with the API key below)",
        f"API docs:  {api}/docs",
        f"Flower:    {flower}  (basic auth {flower_user}{starting})",
        f"API key:   X-API-Key: {first.key}  ({role} of tenant {first.name!r})",
        f"Metrics:   curl -H 'Authorization: Bearer {env['HMS_METRICS_TOKEN']}' {api}/metrics",
        f"dev credentials are kept in {Path(settings.data_dir) / 'credentials.json'}",
        "Ctrl-C stops everything.",
    ]
    output.announce(lines)
    if flower_up:
        return
    deadline = time.monotonic() + FLOWER_WAIT_S
    while processes.returncode is None and time.monotonic() < deadline:
        if _answers(flower):
            output.say(f"Flower is answering: {flower}")
            return
        time.sleep(1)


def _answers(url: str) -> bool:
    """Whether anything answers HTTP at `url` (Flower answers 401 without its password)."""
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


def _stop(output: LauncherOutput, name: str, stop: Callable[[], None]) -> None:
    output.say(f"stopping {name}")
    stop()
