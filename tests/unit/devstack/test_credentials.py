"""The dev stack's secrets (app/devstack/credentials.py) survive restarts, and a secret added
since the file was written is added without changing the others."""

from __future__ import annotations

import json
import stat

from app.devstack.credentials import DevCredentials


def test_credentials_are_created_private_and_found_again(tmp_path):
    first = DevCredentials.load_or_create(tmp_path)
    path = tmp_path / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.metrics_token and first.api_key.startswith("dev-")
    assert DevCredentials.load_or_create(tmp_path) == first


def test_a_file_without_a_metrics_token_gets_one_and_keeps_its_secrets(tmp_path):
    old = {
        "postgres_password": "pg",
        "redis_password": "rd",
        "api_key": "dev-key",
        "flower_basic_auth": "admin:pw",
    }
    (tmp_path / "credentials.json").write_text(json.dumps(old))
    credentials = DevCredentials.load_or_create(tmp_path)
    assert credentials.api_key == "dev-key" and credentials.postgres_password == "pg"
    assert credentials.metrics_token
    kept = json.loads((tmp_path / "credentials.json").read_text())
    assert kept == {**old, "metrics_token": credentials.metrics_token}
