"""Worker lifecycle hooks."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from app.db.session import dispose_engines


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    """A forked pool process must not share its parent's pooled database connections."""
    dispose_engines()
