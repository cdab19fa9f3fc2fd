"""The embedded PostgreSQL's system user (app/devstack/postgres.py), as root: two servers
starting at once on a fresh machine (the suite's two pytest-xdist workers) both create it.

The users are a fake /etc/passwd: adding or deleting the real system user here would disturb the
servers of any suite running beside this one."""

from __future__ import annotations

import pwd
import subprocess

import pytest

from app.devstack import postgres
from app.devstack.postgres import POSTGRES_SYSTEM_USER, EmbeddedPostgres

Completed = subprocess.CompletedProcess[bytes]


class Users:
    """The passwd database, and a useradd that another process beats to it when `beaten`."""

    def __init__(self, beaten: bool) -> None:
        self.names: set[str] = set()
        self.beaten = beaten

    def getpwnam(self, name: str) -> object:
        if name not in self.names:
            raise KeyError(name)
        return object()

    def useradd(self, command: list[str], check: bool = False, **_: object) -> Completed:
        """subprocess.run for useradd: exit status 9 when the name is in use."""
        name = command[-1]
        if self.beaten:  # the other start's useradd ran between our lookup and ours
            self.names.add(name)
        status = 9 if name in self.names else 0
        self.names.add(name)
        return _completed(command, status, check)


def _completed(command: list[str], status: int, check: bool) -> Completed:
    """What subprocess.run returns, or raises with check=True."""
    completed = subprocess.CompletedProcess(
        command, status, b"", b"useradd: failed" if status else b""
    )
    if check:
        completed.check_returncode()
    return completed


@pytest.fixture
def users(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Users:
    users = Users(beaten=request.param)
    monkeypatch.setattr(pwd, "getpwnam", users.getpwnam)
    monkeypatch.setattr(postgres.subprocess, "run", users.useradd)
    return users


@pytest.mark.parametrize("users", [False, True], ids=["alone", "beaten"], indirect=True)
def test_the_system_user_is_created_once_even_when_another_start_creates_it_first(users):
    assert EmbeddedPostgres._system_user() == POSTGRES_SYSTEM_USER
    assert users.names == {POSTGRES_SYSTEM_USER}
    assert EmbeddedPostgres._system_user() == POSTGRES_SYSTEM_USER


def test_a_useradd_that_fails_with_no_user_made_is_an_error(monkeypatch):
    def useradd(command: list[str], check: bool = False, **_: object) -> Completed:
        return _completed(command, 1, check)  # e.g. /etc/passwd locked, no user made

    monkeypatch.setattr(pwd, "getpwnam", Users(beaten=False).getpwnam)
    monkeypatch.setattr(postgres.subprocess, "run", useradd)
    with pytest.raises(subprocess.CalledProcessError):
        EmbeddedPostgres._system_user()
