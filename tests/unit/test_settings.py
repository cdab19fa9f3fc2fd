import os

import pytest
from pydantic import ValidationError

from app.settings import BootstrapKey, Settings


def test_bootstrap_keys_are_named_and_may_be_admin():
    settings = Settings(HMS_API_KEYS=" ops:k1:admin, team-a:k2 ,,")
    assert settings.bootstrap_keys == (
        BootstrapKey("ops", "k1", is_admin=True),
        BootstrapKey("team-a", "k2", is_admin=False),
    )
    assert Settings(HMS_API_KEYS="").bootstrap_keys == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ok:k1,secret-bare-key", "entry 2 is not name:key"),
        ("ops:k1:root", "entry 1 is not name:key"),
        ("a b:k1", "cannot name an API key"),
        ("ops:k1,ops:k2", "names 'ops' twice"),
    ],
)
def test_malformed_bootstrap_keys_are_refused_without_echoing_them(value, message):
    with pytest.raises(ValidationError, match=message) as refused:
        Settings(HMS_API_KEYS=value)
    assert "secret-bare-key" not in str(refused.value) and "k1" not in str(refused.value)


def test_a_visibility_timeout_below_the_time_limit_is_refused():
    with pytest.raises(ValidationError, match="visibility_timeout_s"):
        Settings(
            task_time_limit_s=100,
            task_soft_time_limit_s=90,
            visibility_timeout_s=60,
            run_time_limit_s=50,
        )


def test_missing_urls_explain_how_to_start():
    with pytest.raises(RuntimeError, match="make run"):
        Settings(DATABASE_URL=None).require_database_url()


@pytest.mark.parametrize("variable", ["HMS_MAX_ATTEMPTS", "HMS_MAX_RUN_ATTEMPTS"])
def test_the_attempt_cap_is_read_under_its_name_and_its_older_one(monkeypatch, variable):
    monkeypatch.setenv(variable, "7")
    assert Settings().max_attempts == 7


def test_the_run_memory_budget_is_the_setting_or_the_machine_shared_by_the_pool(monkeypatch):
    monkeypatch.setenv("HMS_RUN_MEMORY_MB", "700")
    assert Settings().run_memory_budget_mb == 700
    monkeypatch.setenv("HMS_RUN_MEMORY_MB", "0")
    machine_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    monkeypatch.setenv("HMS_WORKER_CONCURRENCY", "4")
    assert Settings().run_memory_budget_mb == max(256, (machine_mb - 1024) // 4)
