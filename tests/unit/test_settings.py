import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_api_keys_are_a_comma_separated_list():
    settings = Settings(HMS_API_KEYS=" a, b ,,c ")
    assert settings.api_key_set == {"a", "b", "c"}
    assert Settings(HMS_API_KEYS="").api_key_set == frozenset()


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
