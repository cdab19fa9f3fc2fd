"""The API's server command, as the Python launchers run it: the multi-host stack
(app/devstack/multihost.py), the tests' processes and the benches. The Procfile runs the same
command in its shell, with the same setting."""

from __future__ import annotations

import sys

from app.settings import get_settings


def api_command(port: int, host: str | None = None) -> list[str]:
    """uvicorn serving `api.main:app` on `port` (and `host`; uvicorn's default 127.0.0.1 if
    None), keeping idle connections open `api_keep_alive_s` (app/settings.py says why)."""
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
    if host is not None:
        command += ["--host", host]
    return [*command, "--timeout-keep-alive", str(get_settings().api_keep_alive_s)]
