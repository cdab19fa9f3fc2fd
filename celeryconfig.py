"""All Celery configuration: queues, routes, priorities, reliability, events, beat.

Values that differ between machines (URLs, limits) come from app.settings.
"""

from __future__ import annotations

from celery.schedules import crontab
from kombu import Exchange, Queue

from app.settings import get_settings

_settings = get_settings()

# --- Priorities ----------------------------------------------------------------------------------
# The API speaks AMQP's convention: 0..9, 9 the most urgent. The Redis transport emulates
# priorities with one list per step and pops step 0 first. `broker_priority` is the only place
# that translates between the two.
API_PRIORITY_MAX = 9
DEFAULT_API_PRIORITY = 5


def broker_priority(api_priority: int) -> int:
    if not 0 <= api_priority <= API_PRIORITY_MAX:
        raise ValueError(f"priority must be within 0..{API_PRIORITY_MAX}, got {api_priority}")
    return API_PRIORITY_MAX - api_priority


# A message sent without a priority lands in the middle, not ahead of everything (Redis
# transport's own default is step 0, the most urgent).
task_default_priority = broker_priority(DEFAULT_API_PRIORITY)

# --- Broker and results --------------------------------------------------------------------------
broker_url = _settings.require_redis_url()
result_backend = _settings.require_redis_url()
result_expires = 24 * 3600
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # keep reconnecting while the broker restarts
broker_transport_options = {
    "priority_steps": list(range(API_PRIORITY_MAX + 1)),
    "sep": ":",
    "queue_order_strategy": "priority",
    # An unacknowledged message (its worker died) is handed out again after this many seconds. It
    # must exceed the longest task (task_time_limit), or a run still executing would be delivered
    # twice. Workers look for such messages every unacked_restore_interval seconds, scanning Redis
    # on one look in unacked_restore_throttle: production redelivers within visibility_timeout +
    # about a minute; the fault tests set all three to seconds.
    "visibility_timeout": _settings.visibility_timeout_s,
    "unacked_restore_interval": _settings.unacked_restore_interval_s,
    "unacked_restore_throttle": _settings.unacked_restore_throttle,
    # Fail fast instead of hanging when the broker vanishes without closing the connection
    # (settings.py says why each value; docs/operations.md lists them all).
    "socket_connect_timeout": _settings.redis_connect_timeout_s,
    "socket_timeout": _settings.redis_socket_timeout_s,
    "health_check_interval": _settings.redis_health_check_s,
}
# The result backend (task states, PROGRESS) is its own Redis client with Celery's defaults:
# no connect timeout and a 120 s socket timeout, so each progress report of a run whose worker
# was cut from the broker would wait minutes for nothing. Bounded like the broker's.
redis_socket_connect_timeout = _settings.redis_connect_timeout_s
redis_socket_timeout = _settings.redis_socket_timeout_s
redis_backend_health_check_interval = _settings.redis_health_check_s
result_backend_transport_options = {"retry_policy": {"timeout": 5.0}}

# --- Serialization: JSON only, never pickle ------------------------------------------------------
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
event_serializer = "json"

# --- Queues and routes ---------------------------------------------------------------------------
task_queues = (
    Queue("simulations", Exchange("simulations"), routing_key="simulations"),
    Queue("training", Exchange("training"), routing_key="training"),
)
task_default_queue = "simulations"
imports = ("workers.tasks", "workers.signals")
task_routes = {
    "hms.run_simulation": {"queue": "simulations", "routing_key": "simulations"},
    "hms.run_simulations": {"queue": "simulations", "routing_key": "simulations"},
    "hms.retrain_model": {"queue": "training", "routing_key": "training"},
    "hms.nightly_retrain": {"queue": "training", "routing_key": "training"},
    "hms.retrain_if_due": {"queue": "training", "routing_key": "training"},
    "hms.sweep": {"queue": "simulations", "routing_key": "simulations"},
    "hms.fan_out_study": {"queue": "simulations", "routing_key": "simulations"},
    "hms.apply_retention": {"queue": "simulations", "routing_key": "simulations"},
    "hms.purge_study": {"queue": "simulations", "routing_key": "simulations"},
}

# --- Reliability: at-least-once delivery ---------------------------------------------------------
task_acks_late = True  # acknowledge after the task ran, so a crash means redelivery
task_reject_on_worker_lost = True  # a killed pool process puts its message back
worker_prefetch_multiplier = 1  # a busy worker holds no messages a free one could run
task_acks_on_failure = True  # a task that raised has recorded its failure: do not run it again
task_acks_on_timeout = True  # nor one killed at its hard time limit (signals.py records it)
# A worker that loses the broker lets its running tasks finish: each stores its result in
# PostgreSQL, which the worker may still reach, and its unacknowledged message, redelivered after
# the visibility timeout, finds the work ended and is skipped (lifecycle.claim).
worker_cancel_long_running_tasks_on_connection_loss = False
task_track_started = True
task_soft_time_limit = _settings.task_soft_time_limit_s
task_time_limit = _settings.task_time_limit_s

# --- Monitoring (Flower) -------------------------------------------------------------------------
worker_send_task_events = True
task_send_sent_event = True

# --- Beat ----------------------------------------------------------------------------------------
timezone = "UTC"
enable_utc = True


def parse_crontab(expression: str) -> crontab:
    """ "minute hour day-of-month month day-of-week", as in cron (HMS_RETRAIN_CRON and
    HMS_RETENTION_CRON are written so)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab has 5 fields, got {expression!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


beat_schedule: dict[str, dict[str, object]] = {
    # Exactly one retrain per slot, however many beats fire it (workers/slots.py).
    "nightly-retrain": {
        "task": "hms.nightly_retrain",
        "schedule": parse_crontab(_settings.retrain_cron),
        "args": (_settings.retrain_cron,),  # the worker derives the slot from the beat's crontab
    },
}
beat_schedule["sweep-stuck-work"] = {
    "task": "hms.sweep",
    "schedule": _settings.sweep_interval_s,
    "options": {"priority": broker_priority(API_PRIORITY_MAX)},  # ahead of queued runs
}
if _settings.retention_days > 0:
    beat_schedule["delete-old-runs"] = {
        "task": "hms.apply_retention",
        "schedule": parse_crontab(_settings.retention_cron),
    }
if _settings.auto_retrain_samples > 0:
    beat_schedule["retrain-when-enough-new-samples"] = {
        "task": "hms.retrain_if_due",
        "schedule": 30.0,  # seconds
    }
beat_schedule_filename = str(_settings.data_dir / "celerybeat-schedule")
beat_scheduler = "workers.beat:Scheduler"
