"""The Celery application. Configuration lives in celeryconfig.py."""

from __future__ import annotations

from celery import Celery

app = Celery("hms")
app.config_from_object("celeryconfig")
