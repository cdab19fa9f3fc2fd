"""The launcher's environment for its processes (app/devstack/launcher.py): run as root, Celery's
one superuser warning is ignored and every other warning still shows."""

from __future__ import annotations

import os
import subprocess
import sys

from app.devstack import launcher

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
