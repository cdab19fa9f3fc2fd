"""The launcher's environment for its processes (app/devstack/launcher.py): run as root, Celery's
one superuser warning is ignored and every other warning still shows."""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

from app.devstack import launcher
from app.devstack.output import LauncherOutput
from tests.processes import free_port, wait_until

# Celery's own warning, as its worker emits it on every start as root, then another UserWarning.
WARN = """
import warnings
from celery.platforms import ROOT_DISCOURAGED, SecurityWarning
warnings.warn(SecurityWarning(ROOT_DISCOURAGED.format(uid=0, euid=0, gid=0, egid=0)))
warnings.warn(SecurityWarning("another security warning"))
"""


def warnings_printed(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WARN], env=env, capture_output=True, text=True, check=True
    )
    return done.stderr


def test_as_root_only_celerys_superuser_warning_is_ignored(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PYTHONWARNINGS", "default::DeprecationWarning")
    env = {**os.environ, **launcher._as_root_warnings()}
    assert env["PYTHONWARNINGS"].startswith("default::DeprecationWarning,")  # the user's kept
    printed = warnings_printed(env)
    assert "superuser privileges" not in printed
    assert "another security warning" in printed
    assert "superuser privileges" in warnings_printed(dict(os.environ))


def test_not_root_the_environment_is_left_alone(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert launcher._as_root_warnings() == {}


class _Answering:
    """An HTTP server on 127.0.0.1 answering every GET with `status` (Flower without its
    password: 401; the API's readiness: 200)."""

    def __init__(self, port: int, status: int) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _banner(flower_answers_first: bool) -> tuple[str, str]:
    """What _announce_when_ready writes with the API answering and Flower answering from the
    start, or only once the banner is out; and Flower's address."""
    api_port, flower_port = free_port(), free_port()
    api = _Answering(api_port, 200)
    flower = _Answering(flower_port, 401) if flower_answers_first else None
    stream = io.StringIO()
    settings = SimpleNamespace(api_port=api_port, flower_port=flower_port, data_dir=".hms")
    env = {
        "HMS_API_KEYS": "dev:dev-key:admin",
        "FLOWER_BASIC_AUTH": "admin:secret",
        "HMS_METRICS_TOKEN": "token",
    }
    announcing = threading.Thread(
        target=launcher._announce_when_ready,
        args=(SimpleNamespace(returncode=None), env, settings, 0.0, LauncherOutput("text", stream)),
    )
    announcing.start()
    try:
        wait_until(lambda: "Ctrl-C stops everything." in stream.getvalue(), 60, "the banner")
        if flower is None:
            assert "Flower is answering" not in stream.getvalue()
            flower = _Answering(flower_port, 401)
        announcing.join(60)
        assert not announcing.is_alive()
    finally:
        api.close()
        if flower is not None:
            flower.close()
    return stream.getvalue(), f"http://127.0.0.1:{flower_port}"


def test_the_banner_says_flower_is_not_answering_yet_and_a_line_follows_when_it_does():
    printed, flower = _banner(flower_answers_first=False)
    (line,) = [line for line in printed.splitlines() if line.startswith("Flower:")]
    assert line == f"Flower:    {flower}  (basic auth admin:secret; {launcher.FLOWER_STARTING})"
    assert printed.rstrip().endswith(f"hms up: Flower is answering: {flower}")


def test_the_banner_of_a_flower_already_answering_says_nothing_more():
    printed, flower = _banner(flower_answers_first=True)
    (line,) = [line for line in printed.splitlines() if line.startswith("Flower:")]
    assert line == f"Flower:    {flower}  (basic auth admin:secret)"
    assert "Flower is answering" not in printed
