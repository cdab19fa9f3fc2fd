"""The API's server command as the Python launchers run it, and the Procfile's: both keep idle
connections open as long as `api_keep_alive_s` says (tests/e2e/test_api_server.py runs it)."""

from __future__ import annotations

import pytest

from app.devstack.api_server import api_command
from app.settings import Settings, get_settings
from tests.processes import procfile_command


@pytest.fixture
def keep_alive(monkeypatch):
    monkeypatch.setenv("HMS_API_KEEP_ALIVE_S", "120")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_launchers_command_keeps_idle_connections_as_set(keep_alive):
    command = api_command(8123, "10.0.0.2")
    assert command[1:4] == ["-m", "uvicorn", "api.main:app"]
    assert command[4:] == ["--port", "8123", "--host", "10.0.0.2", "--timeout-keep-alive", "120"]


def test_the_procfiles_api_has_the_settings_default():
    default = Settings.model_fields["api_keep_alive_s"].default
    assert f'--timeout-keep-alive "${{HMS_API_KEEP_ALIVE_S:-{default}}}"' in procfile_command("api")


def test_a_keep_alive_no_longer_than_uvicorns_own_is_refused(monkeypatch):
    monkeypatch.setenv("HMS_API_KEEP_ALIVE_S", "5")
    with pytest.raises(ValueError, match="api_keep_alive_s"):
        Settings()
