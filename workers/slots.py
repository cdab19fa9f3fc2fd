"""Which schedule slot a beat-sent message belongs to: the latest time at or before now that the
crontab fires. Two beat processes, or a redelivery of the message later that day, compute the
same slot, so the slot's unique key in the database lets exactly one retrain through. (The
crontab itself is parsed where the beat schedule is: celeryconfig.parse_crontab.)"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery.schedules import crontab

#: How far back to look for the latest fire time (a weekly crontab fires within 8 days).
LOOK_BACK = timedelta(days=8)


def latest_fire(schedule: crontab, now: datetime) -> datetime:
    """The latest minute <= now (UTC) at which `schedule` fires."""
    moment = now.replace(second=0, microsecond=0)
    oldest = moment - LOOK_BACK
    while moment >= oldest:
        if _fires_at(schedule, moment):
            return moment
        moment -= timedelta(minutes=1)
    raise ValueError("the crontab did not fire in the last 8 days")


def _fires_at(schedule: crontab, moment: datetime) -> bool:
    cron_weekday = (moment.weekday() + 1) % 7  # cron: 0 is Sunday; Python: 0 is Monday
    return (
        moment.minute in schedule.minute
        and moment.hour in schedule.hour
        and moment.day in schedule.day_of_month
        and moment.month in schedule.month_of_year
        and cron_weekday in schedule.day_of_week
    )
