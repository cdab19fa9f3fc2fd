"""The network tests need root and iproute2's `ip netns` (CI runs as root); elsewhere they skip
and say why."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _why_no_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs the suite as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed: no network namespaces"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns` is unavailable here: {probe.stderr.strip()}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _why_no_namespaces()
    if reason is None:
        return
    for item in items:
        if "tests/network/" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=reason))
