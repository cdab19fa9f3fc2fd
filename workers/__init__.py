"""Celery adapters: the app, thin tasks that call app.services, and worker signals."""
