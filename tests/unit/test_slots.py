from datetime import UTC, datetime

import pytest

from celeryconfig import parse_crontab
from workers.slots import latest_fire


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_nightly_slot_is_the_latest_fire_time_before_now():
    nightly = parse_crontab("0 2 * * *")
    assert latest_fire(nightly, at("2026-11-27T02:00:03")) == at("2026-11-27T02:00")
    # A redelivery hours later still belongs to the same night.
    assert latest_fire(nightly, at("2026-11-27T09:41:00")) == at("2026-11-27T02:00")
    assert latest_fire(nightly, at("2026-11-27T01:59:59")) == at("2026-11-26T02:00")


def test_two_beats_firing_in_the_same_minute_get_the_same_slot():
    every_minute = parse_crontab("* * * * *")
    assert latest_fire(every_minute, at("2026-11-27T10:15:00.2")) == latest_fire(
        every_minute, at("2026-11-27T10:15:00.9")
    )


def test_weekdays_follow_crons_sunday_zero():
    sundays = parse_crontab("30 4 * * 0")
    assert latest_fire(sundays, at("2026-11-27T12:00")) == at("2026-11-22T04:30")  # a Sunday


def test_a_crontab_needs_five_fields():
    with pytest.raises(ValueError, match="5 fields"):
        parse_crontab("0 2 * *")
