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
