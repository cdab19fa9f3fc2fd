"""`hms up` (what `make run` runs) as a new user would: no URLs set, embedded servers, the whole
Procfile under honcho; a second launcher on the same data refuses to start; Ctrl-C stops
everything; a second start, with HMS_LOG_FORMAT=json, works, finds the data and writes only JSON
objects naming their process. Neither start warns about root or Flower's first inspection."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from app.devstack.launcher import FLOWER_STARTING, FLOWER_WAIT_S
from tests.conftest import EXAMPLE_SPEC
from tests.processes import Process, free_port, wait_until

EXAMPLE = EXAMPLE_SPEC
HMS = str(Path(sys.executable).parent / "hms")


class Launcher(Process):
    def __init__(self, data_dir: Path, ports: dict[str, int], log_format: str = "text") -> None:
        env = {
            "HMS_LOG_FORMAT": log_format,
            "HMS_DATA_DIR": str(data_dir),
            "HMS_API_PORT": str(ports["api"]),
            "HMS_FLOWER_PORT": str(ports["flower"]),
            "HMS_EMBEDDED_POSTGRES_PORT": str(ports["postgres"]),
            "HMS_EMBEDDED_REDIS_PORT": str(ports["redis"]),
        }
        # A new user's shell: no URLs, no keys; the launcher provides the dev defaults.
        unset = frozenset(
            {"DATABASE_URL", "REDIS_URL", "HMS_API_KEYS", "FLOWER_BASIC_AUTH", "HMS_METRICS_TOKEN"}
        )
        super().__init__("launcher", [HMS, "up"], env=env, unset=unset)

    def ctrl_c(self) -> int:
        """What a terminal does on Ctrl-C: SIGINT to the foreground process group."""
        if self.alive():
            os.killpg(self.pid, signal.SIGINT)
        try:
            return self.popen.wait(60)
        except subprocess.TimeoutExpired:
            left = [
                f"{child.pid} {' '.join(child.cmdline())[:200]}"
                for child in psutil.Process(self.pid).children(recursive=True)
            ]
            raise AssertionError(
                "`hms up` still running 60 s after Ctrl-C; its processes:\n"
                + "\n".join(left)
                + "\nits output's end:\n"
                + self.log()[-6000:]
            ) from None


def listening(port: int) -> bool:
    return any(
        c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in psutil.net_connections("tcp")
    )


@pytest.fixture
def ports():
    return {name: free_port() for name in ("api", "flower", "postgres", "redis")}


def start_use_and_stop(
    data_dir: Path, ports: dict[str, int], log_format: str = "text"
) -> tuple[str, set[str], str]:
    """One session of a new user: `hms up`, submit the example, check Flower and the metrics
    line of the banner, Ctrl-C. Returns the submitted run's id, the ids the API listed and the
    launcher's output."""
    launcher = Launcher(data_dir, ports, log_format)
    api = f"http://127.0.0.1:{ports['api']}"
    try:
        wait_until(lambda: "ready after" in launcher.log() or not launcher.alive(), 120, "ready")
        assert launcher.alive(), launcher.log()[-3000:]
        assert f"API docs:  {api}/docs" in launcher.log()
        assert f"Dashboard: {api}/  (log in with the API key below)" in launcher.log()
        assert httpx.get(f"{api}/login").status_code == 200
        credentials = json.loads((data_dir / "credentials.json").read_text())
        assert "(admin key of tenant 'dev')" in launcher.log()
        key = {"X-API-Key": credentials["api_key"]}
        token = credentials["metrics_token"]
        banner = f"Metrics:   curl -H 'Authorization: Bearer {token}' {api}/metrics"
        assert banner in launcher.log()
        scraper = {"Authorization": f"Bearer {token}"}
        metrics = httpx.get(f"{api}/metrics", headers=scraper, timeout=30)
        assert metrics.status_code == 200 and "hms_http_requests_total" in metrics.text
        response = httpx.post(f"{api}/api/v1/runs", json=EXAMPLE, headers=key, timeout=30)
        assert response.status_code == 202, response.text
        run_id = response.json()["id"]

        def succeeded() -> bool:
            run = httpx.get(f"{api}/api/v1/runs/{run_id}", headers=key, timeout=30).json()
            return run["status"] == "succeeded"

        wait_until(succeeded, 60, "the run to succeed", every_s=0.2)
        second = Launcher(data_dir, ports)  # the same folder: it must leave this one alone
        assert second.popen.wait(60) == 1
        assert f"another `hms up` (pid {launcher.pid}) is running with" in second.log()
        assert httpx.get(f"{api}/api/v1/runs/{run_id}", headers=key).status_code == 200
        flower = f"http://127.0.0.1:{ports['flower']}"
        (line,) = [line for line in launcher.log().splitlines() if f"Flower:    {flower}" in line]
        if FLOWER_STARTING in line:  # Flower was waiting for the worker: a line says when it is up
            answering = f"Flower is answering: {flower}"
            wait_until(lambda: answering in launcher.log(), FLOWER_WAIT_S, "Flower's line")
        user, password = credentials["flower_basic_auth"].split(":", 1)
        assert httpx.get(flower, timeout=30).status_code == 401
        assert httpx.get(flower, auth=(user, password), timeout=30).status_code == 200
        page = httpx.get(f"{api}/api/v1/runs", headers=key, timeout=30).json()
        listed = {run["id"] for run in page["items"]}
    finally:
        launcher.ctrl_c()
    log = launcher.log()
    assert "stopping PostgreSQL" in log and "stopping Valkey" in log, log[-3000:]
    for name, port in ports.items():  # a loaded machine may take a while to close sockets
        wait_until(lambda p=port: not listening(p), 60, f"{name} to stop listening on {port}")
    leftovers = [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if str(data_dir) in " ".join(process.info["cmdline"] or [])
    ]
    assert leftovers == [], leftovers
    return run_id, listed, log


@pytest.fixture
def own_folder() -> Iterator[Path]:
    """A folder of the test's own that PostgreSQL's system user (we may be root) can pass
    through: pytest's tmp_path is under 0700 folders, from which the launcher would move the
    cluster to /var/lib/hms-postgres, where it would outlive the test."""
    folder = Path(tempfile.mkdtemp(prefix="hms-launcher-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_hms_up_runs_the_system_and_ctrl_c_stops_all_of_it_twice(own_folder, ports):
    data_dir = own_folder / "hms-data"
    first, _, text = start_use_and_stop(data_dir, ports)
    assert "worker.1 | " in text  # honcho's prefix
    second, listed, json_lines = start_use_and_stop(data_dir, ports, log_format="json")
    assert listed == {first, second}  # the second start found the first start's data
    objects = [json.loads(line) for line in json_lines.splitlines()]
    assert all(isinstance(o, dict) and o["process"] for o in objects), json_lines[-3000:]
    processes = {o["process"] for o in objects}
    assert {"launcher", "migrate", "api.1", "worker.1", "beat.1", "flower.1"} <= processes
    for log in (text, json_lines):
        # run as root (CI, containers) the worker would warn on every start; Flower warns when
        # it inspects the workers before one is up
        assert "superuser privileges" not in log
        assert "Inspect method" not in log
