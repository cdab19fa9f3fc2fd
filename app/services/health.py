"""Readiness: can this process reach the database and the broker?"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.db.session import ping_database
from app.errors import TransientStoreError
from app.services.ports import RunQueue


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]  # dependency -> "ok" or "down: <reason>"

    @property
    def ready(self) -> bool:
        return all(state == "ok" for state in self.checks.values())


def check_readiness(queue: RunQueue) -> Readiness:
    probes: dict[str, Callable[[], None]] = {"database": ping_database, "broker": queue.ping}
    checks = {}
    for dependency, probe in probes.items():
        try:
            probe()
            checks[dependency] = "ok"
        except TransientStoreError as exc:
            checks[dependency] = f"down: {exc.detail}"
    return Readiness(checks)
