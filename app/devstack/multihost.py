"""The whole system on five hosts of a network made of namespaces (app/devstack/netns.py):
PostgreSQL on `db`, Valkey on `broker`, the API and Flower on `api`, a Celery worker on
`worker1` and on `worker2`, and beat on `worker1` only. Every process reaches the others by
their addresses on the bridge; nothing listens on or connects to loopback. Needs root.

`python -m app.devstack.multihost up` starts it for a person to look at (docs/multi-host.md):
it prints the URLs and the API key, and Ctrl-C tears it all down, data included. The tests in
tests/network/ start it with `MultiHostStack`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import httpx

from app.devstack.api_server import api_command
from app.devstack.credentials import DevCredentials
from app.devstack.netns import Network
from app.devstack.postgres import EmbeddedPostgres
from app.devstack.server import ServerError, wait_for
from app.devstack.valkey import EmbeddedValkey

#: The checkout: where alembic.ini is and where the processes run.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("db", "broker", "api", "worker1", "worker2")
WORKER_HOSTS = ("worker1", "worker2")
#: Beat runs on exactly one host: two would send every scheduled task twice.
BEAT_HOST = "worker1"
#: Each host has its own ports, so every service keeps its usual one.
POSTGRES_PORT, VALKEY_PORT, API_PORT, FLOWER_PORT = 5432, 6379, 8000, 5555
#: How long (s) a process may take to come up; a cold start compiles the simulator (~20 s).
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Service:
    """A process of the stack: where it runs, its command line and its environment."""

    name: str
    host: str
    argv: tuple[str, ...]
    env: dict[str, str]
    #: A line its log shows once it is ready (None: ready is asked over HTTP).
    ready_line: str | None = None


class MultiHostStack:
    """The stack on its network, its files (data, logs) under `root`.

    `concurrency`: pool processes per worker. `env` is added to every process's environment
    (tests shorten timings with it). Processes are named `api`, `flower`, `worker1`,
    `worker2` and `beat`; the servers `postgres` and `valkey`. `stop`, `kill` and `start` take
    those names, so a test can crash and restart any one of them."""

    def __init__(
        self,
        root: Path,
        *,
        prefix: str = "hms",
        subnet: str = "10.77.0.0/24",
        concurrency: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # PostgreSQL's system user (when we are root) passes through to its data folder.
        self.root.chmod(0o711)
        (self.root / "logs").mkdir(exist_ok=True)
        self.credentials = DevCredentials.load_or_create(self.root)
        self.network = Network(HOSTS, prefix=prefix, subnet=subnet)
        try:
            self._define(concurrency, dict(env or {}))
        except BaseException:
            self.network.close()
            raise
        self.processes: dict[str, subprocess.Popen[Any]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._launched_at: dict[str, int] = {}  # each log's size when its process last started

    def _define(self, concurrency: int, env: dict[str, str]) -> None:
        """The servers and the processes, on the network's addresses (nothing starts yet)."""
        self.postgres = EmbeddedPostgres(
            self.root / "postgres",
            POSTGRES_PORT,
            self.credentials.postgres_password,
            durable=False,  # a throwaway cluster, deleted with the stack
            host=self.network.ip("db"),
            clients=self.network.subnet,
        )
        self.valkey = EmbeddedValkey(
            self.root / "valkey",
            VALKEY_PORT,
            self.credentials.redis_password,
            host=self.network.ip("broker"),
        )
        self.services = {s.name: s for s in self._services(concurrency, env)}

    # What a client needs.

    @property
    def api_url(self) -> str:
        return f"http://{self.network.ip('api')}:{API_PORT}"

    @property
    def flower_url(self) -> str:
        return f"http://{self.network.ip('api')}:{FLOWER_PORT}"

    @property
    def flower_auth(self) -> tuple[str, str]:
        user, _, password = self.credentials.flower_basic_auth.partition(":")
        return user, password

    @property
    def api_key(self) -> str:
        """An admin key (tenant `dev`)."""
        return self.credentials.api_key

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.valkey.url

    def worker_hostname(self, host: str) -> str:
        """The Celery hostname (`-n`) of the worker on `host`."""
        return f"celery@{host}"

    # Starting and stopping.

    def start_all(self) -> Self:
        """Servers, migrations, then every process; returns once all of them are ready."""
        try:
            with ThreadPoolExecutor(2) as pool:  # the database and its schema beside the broker
                database = pool.submit(self._start_database)
                broker = pool.submit(self.start, "valkey")
                database.result()
                broker.result()
            for name in self.services:  # all at once: each worker's start takes seconds
                self._launch(name)
            for service in self.services.values():
                self._wait_ready(service)
        except BaseException:
            self.close()
            raise
        return self

    def start(self, name: str) -> None:
        """Start a process or server (again) and wait until it is ready."""
        if name in ("postgres", "valkey"):
            self._start_server(name)
        else:
            self._launch(name)
            self._wait_ready(self.services[name])

    def _launch(self, name: str) -> None:
        service = self.services[name]
        log = self._logs.get(name) or self._log_path(name).open("ab")
        self._logs[name] = log
        # A restarted process appends to its log: only what follows says it is ready.
        self._launched_at[name] = self._log_path(name).stat().st_size
        self.processes[name] = self.network.popen(
            service.host,
            service.argv,
            env=service.env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _wait_ready(self, service: Service) -> None:
        what = f"{service.name} on {service.host}"
        wait_for(lambda: self._ready(service), READY_TIMEOUT_S, what)

    def stop(self, name: str) -> None:
        """A clean shutdown: SIGTERM (a warm shutdown for Celery), then wait for the exit."""
        if name == "postgres":
            self.postgres.stop()  # pg_ctl signals the server: no connection needed
        elif name == "valkey":
            self.valkey.terminate()
        else:
            self._signal(name, signal.SIGTERM)

    def kill(self, name: str) -> None:
        """A crash: SIGKILL, nothing gets to clean up."""
        if name == "postgres":
            self.postgres.kill()
        elif name == "valkey":
            self.valkey.kill()
        else:
            self._signal(name, signal.SIGKILL)

    def log(self, name: str, since: int = 0) -> str:
        """The process's output (all its starts), from byte `since` on."""
        path = self._log_path(name)
        if not path.exists():
            return ""
        with path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def close(self) -> None:
        """End every process and server (whatever is left inside the namespaces is killed
        with them) and delete the network. The files under `root` stay."""
        self.network.close()
        for log in self._logs.values():
            log.close()

    def __enter__(self) -> Self:
        return self.start_all()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Inside.

    def _services(self, concurrency: int, extra: dict[str, str]) -> list[Service]:
        api_ip = self.network.ip("api")
        python = (sys.executable, "-m")
        celery = (*python, "celery", "-A", "workers.celery_app")
        uvicorn = tuple(api_command(API_PORT, api_ip))
        flower = (*celery, "flower", f"--address={api_ip}", f"--port={FLOWER_PORT}")
        worker = (*celery, "worker", "--queues", "simulations,training", "--loglevel", "INFO",
                  "--concurrency", str(concurrency))  # fmt: skip
        services = [
            Service("api", "api", uvicorn, self._env("api", extra)),
            Service("flower", "api", flower, self._env("api", extra)),
        ]
        for host in WORKER_HOSTS:
            name = self.worker_hostname(host)
            argv = (*worker, "--hostname", name)
            services.append(Service(host, host, argv, self._env(host, extra), f"{name} ready."))
        beat = (*celery, "beat", "--loglevel", "INFO")
        services.append(
            Service("beat", BEAT_HOST, beat, self._env(BEAT_HOST, extra), "beat: Starting...")
        )
        return services

    def _env(self, host: str, extra: dict[str, str]) -> dict[str, str]:
        """A process's whole environment: nothing inherited that could point at loopback
        (a test session's DATABASE_URL, say), only what it needs to run and find the others."""
        inherited = {k: os.environ[k] for k in ("HOME", "LANG", "PYTHONPATH") if k in os.environ}
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {
            **inherited,
            "PATH": path,
            "PYTHONUNBUFFERED": "1",
            # Celery's warning about running as root, on every start (see launcher.py).
            "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges",
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.valkey.url,
            "HMS_API_KEYS": f"dev:{self.credentials.api_key}:admin",
            "FLOWER_BASIC_AUTH": self.credentials.flower_basic_auth,
            "HMS_API_URL": self.api_url,
            "HMS_WORKER_METRICS_HOST": self.network.ip(host),
            "HMS_DATA_DIR": str(self.root / host),
            # One model cache for all hosts (each machine would have its own): a worker
            # trains the bootstrap model only when none is cached (~3 s on an idle core).
            "HMS_MODEL_CACHE_DIR": str(self.root / "cache"),
            **extra,
        }

    def _start_server(self, name: str) -> None:
        """Start the server from a process inside its host's namespace, which the server's
        processes inherit (pg_ctl daemonizes PostgreSQL; Valkey runs in its own session)."""
        server = self.postgres if name == "postgres" else self.valkey
        host = "db" if name == "postgres" else "broker"
        argv = [sys.executable, "-m", "app.devstack.multihost", "start-server", name]
        argv += [str(server.data_dir), server.host, str(server.port), self.network.subnet]
        result = self.network.run(
            host, argv, input=server.password, capture_output=True, text=True, cwd=PROJECT_ROOT
        )
        if result.returncode != 0:
            raise ServerError(f"{name} on {host} did not start: {result.stderr.strip()[-2000:]}")

    def _start_database(self) -> None:
        self.start("postgres")
        self._migrate()

    def _migrate(self) -> None:
        alembic = [sys.executable, "-m", "alembic", "-c", str(PROJECT_ROOT / "alembic.ini")]
        result = self.network.run(
            "api",
            [*alembic, "upgrade", "head"],
            env=self.services["api"].env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServerError(f"alembic upgrade head failed: {result.stderr.strip()[-2000:]}")

    def _ready(self, service: Service) -> bool:
        process = self.processes[service.name]
        if process.poll() is not None:
            raise ServerError(
                f"{service.name} exited ({process.returncode}):\n{self.log(service.name)[-3000:]}"
            )
        if service.ready_line is not None:
            return service.ready_line in self.log(service.name, self._launched_at[service.name])
        if service.name == "api":
            url, auth = f"{self.api_url}/health/ready", None
        else:
            url, auth = f"{self.flower_url}/api/workers", self.flower_auth
        try:
            return httpx.get(url, auth=auth, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _signal(self, name: str, signum: int) -> None:
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signum)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _start_server(kind: str, data_dir: str, host: str, port: str, clients: str) -> None:
    """Run inside the server's namespace by MultiHostStack: the password comes on stdin."""
    password = sys.stdin.read()
    if kind == "postgres":
        EmbeddedPostgres(
            Path(data_dir), int(port), password, durable=False, host=host, clients=clients
        ).start()
    else:
        EmbeddedValkey(Path(data_dir), int(port), password, host=host).start()


def up() -> int:
    """Start the stack in a fresh folder, print how to reach it, and wait for Ctrl-C."""
    root = Path(tempfile.mkdtemp(prefix="hms-multihost-"))
    started = time.monotonic()
    print(f"starting PostgreSQL, Valkey, the API, Flower and two workers on {', '.join(HOSTS)}")
    stop = False

    def interrupted(*_: object) -> None:
        nonlocal stop
        stop = True

    try:
        with MultiHostStack(root, concurrency=2) as stack:
            user, password = stack.flower_auth
            hosts = "\n".join(f"  {h:8} {stack.network.ip(h)}" for h in HOSTS)
            print(
                f"ready after {time.monotonic() - started:.0f} s\n"
                f"Hosts (namespaces {stack.network.prefix}-<host>):\n{hosts}\n"
                f"Dashboard: {stack.api_url}/  (log in with the API key)\n"
                f"API key:   X-API-Key: {stack.api_key}  (admin of tenant 'dev')\n"
                f"Flower:    {stack.flower_url}  (basic auth {user}:{password})\n"
                f"Workers:   {', '.join(map(stack.worker_hostname, WORKER_HOSTS))}; "
                f"beat on {BEAT_HOST}\n"
                f"Logs:      {root / 'logs'}\n"
                "Ctrl-C stops everything and deletes the data.",
                flush=True,
            )
            signal.signal(signal.SIGINT, interrupted)
            signal.signal(signal.SIGTERM, interrupted)
            while not stop:
                time.sleep(0.5)
            print("stopping", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devstack.multihost", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the stack on five namespaces; Ctrl-C stops it")
    server = commands.add_parser("start-server", help=argparse.SUPPRESS)
    server.add_argument("kind", choices=["postgres", "valkey"])
    server.add_argument("args", nargs=4)
    options = parser.parse_args(argv)
    if options.command == "up":
        if os.geteuid() != 0:
            parser.error("network namespaces need root")
        return up()
    _start_server(options.kind, *options.args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
