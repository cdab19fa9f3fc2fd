"""All configuration, read once from the environment (and an optional `.env`).

Nothing else in the project reads `os.environ`; everything calls `get_settings()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.tenancy import check_name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        # Errors must not echo values: some are secrets.
        env_prefix="HMS_",
        env_file=".env",
        extra="ignore",
        hide_input_in_errors=True,
    )

    # Connections. Unset means "use the embedded servers" (only the launcher and tests start them).
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "HMS_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "HMS_REDIS_URL")
    )

    # Secrets: no usable defaults; the dev launcher generates its own. HMS_API_KEYS bootstraps
    # keys without the database: comma-separated `name:key` (a tenant), `name:key:admin` (may
    # act for every tenant). Keys made with `hms keys create` live hashed in the database.
    api_keys: str = Field(default="", validation_alias=AliasChoices("HMS_API_KEYS"))
    flower_basic_auth: str = Field(default="", validation_alias=AliasChoices("FLOWER_BASIC_AUTH"))

    # Where the `hms` CLI finds the API, and the key it sends.
    api_url: str = "http://127.0.0.1:8000"
    api_key: str = ""

    # The embedded default (`make run`): where data lives and which loopback ports to use.
    data_dir: Path = Path(".hms")
    embedded_postgres_port: int = 54329
    embedded_redis_port: int = 63799
    api_port: int = 8000
    flower_port: int = 5555
    # Seconds the API (uvicorn, the Procfile's `--timeout-keep-alive`) keeps an idle HTTP
    # connection open. uvicorn's default, 5, equals httpx's pool expiry: a client reusing a
    # connection as the server closes it gets a reset instead of an answer (bench/system.py
    # failed so in 2 runs of 6 at 50 clients, 2026-12-07). Longer than the pooled clients' reuse
    # windows (httpx 5 s) and than a load balancer's idle timeout (commonly 60 s): 75, nginx's.
    api_keep_alive_s: int = Field(default=75, gt=5)

    # Execution. Time limits, shortest first: a run stops itself past `run_time_limit_s` (checked
    # at each progress report); Celery interrupts it past the soft limit and kills it past the
    # hard one; the broker hands an unacknowledged message out again after the visibility
    # timeout, which must exceed them all or a long run is redelivered while it still executes.
    progress_interval_s: float = Field(default=0.5, gt=0)
    run_time_limit_s: float = Field(default=840, gt=0)
    task_soft_time_limit_s: int = Field(default=900, gt=0)
    task_time_limit_s: int = Field(default=960, gt=0)
    visibility_timeout_s: int = Field(default=1200, gt=0)
    # How often (s) a worker looks for unacknowledged messages past the visibility timeout, and
    # on how many of those looks it actually scans Redis (kombu: period = interval x throttle).
    unacked_restore_interval_s: int = Field(default=10, gt=0)
    unacked_restore_throttle: int = Field(default=6, gt=0)
    retry_backoff_max_s: int = Field(default=60, gt=0)
    max_retries: int = Field(default=8, ge=0)
    # Memory (MB) one run may use above its pool process's footprint at start: the API refuses
    # a spec whose estimate (app/runmemory.py, measured in docs/guarantees.md) exceeds it, and each
    # pool process caps its address space at its footprint plus this, so a run that still blows
    # up fails alone with a MemoryError. 0: this machine's memory, less 1 GB for the rest, over
    # `worker_concurrency` pool processes (set it where the API and workers run on other hosts).
    run_memory_mb: int = Field(default=0, ge=0)
    # Pool processes per worker (the Procfile's `--concurrency`).
    worker_concurrency: int = Field(default=2, gt=0)
    # Work (a run, a retrain) whose worker died this many times is failed instead of redelivered
    # again. HMS_MAX_RUN_ATTEMPTS is its older name.
    max_attempts: int = Field(
        default=3, gt=0, validation_alias=AliasChoices("HMS_MAX_ATTEMPTS", "HMS_MAX_RUN_ATTEMPTS")
    )

    # Recovery (celery beat): every `sweep_interval_s`, re-send runs and retrains whose message
    # never left (a crash between commit and enqueue) after `requeue_unsent_after_s`, queued
    # ones whose message may have been lost (a broker crash) after `requeue_queued_after_s`,
    # and running ones silent for longer than the hard time limit plus a minute.
    sweep_interval_s: float = Field(default=60, gt=0)
    requeue_unsent_after_s: float = Field(default=30, gt=0)
    requeue_queued_after_s: float = Field(default=3600, gt=0)

    # Live updates (docs/api.md): with `live_notify`, each API process LISTENs for the database's
    # change notifications and wakes a watched stream at once; its streams re-read their row
    # every `live_safety_poll_s` anyway (a notification lost with a connection nobody noticed
    # dropping) and every `live_poll_s` while the listener is down or `live_notify` is off.
    # 0.25 s kept a report within ~0.75 s of its commit before notifications (one primary-key
    # read per stream each time); 2 s is 1/8 of those reads, and the latest a missed one shows.
    live_notify: bool = True
    live_poll_s: float = Field(default=0.25, gt=0)
    live_safety_poll_s: float = Field(default=2.0, gt=0)

    # Abuse limits of the API.
    max_body_bytes: int = Field(default=20_000_000, gt=0)
    submissions_per_minute: int = Field(default=120, gt=0, description="per API key")

    # The learning loop.
    samples_per_run: int = Field(default=1000, ge=0, description="tasks sampled per run")
    training_window: int = Field(default=200_000, gt=0, description="newest samples trained on")
    min_training_samples: int = Field(default=2000, gt=0)
    training_max_iter: int = Field(default=300, gt=0)
    training_learning_rate: float = Field(default=0.1, gt=0, le=1)
    # Nightly retraining (celery beat, UTC): a crontab "minute hour day-of-month month day-of-week".
    retrain_cron: str = "0 2 * * *"
    # Retrain automatically after this many new samples (0: only nightly and on demand).
    auto_retrain_samples: int = Field(default=0, ge=0)

    # The kernel performance models (docs/performance-models.md). A run records at most this many
    # kernel executions (a guess at "enough": 5,000 is ~0.4 MB of rows, COPYed with its
    # results); a fit reads the newest `perf_model_window` of a tenant's profile. Fitting 100,000
    # observations drawn from the V100 profile on this project's 2-core VM (load ~4, shared):
    # history 0.15 s, regression 0.17 s, nl_regression 1.1 s, learned 84 s (48 CPU-s), which a
    # run that decides with `learned` would pay whenever observations arrived since the last fit:
    # a stored fit is reused until the scope has gained `perf_model_refit_fraction` of the
    # observations it was fitted on (0.25: at the full window, one `learned` refit per 25,000 new
    # observations, five runs at the per-run bound; 0: refit on any new observation).
    perf_observations_per_run: int = Field(default=5000, ge=0)
    perf_model_window: int = Field(default=100_000, gt=0)
    perf_model_refit_fraction: float = Field(default=0.25, ge=0)

    # Per-task schedules are shown (page, CSV, API) for runs up to this many tasks: recomputed
    # from the spec and seed on read (about a second per policy at 100k tasks, bench/README.md)
    # or, for the few policies that decide on state outside the spec, stored (about 2 MB per
    # policy at 100k tasks: services/schedules.py); larger runs show only their metrics.
    schedule_max_tasks: int = Field(default=100_000, ge=0)

    # Models every process needs and can rebuild (the bootstrap model: ~3 MB, 0.15 s to load
    # against 2-3 s to train on an idle 2-core VM), cached between processes. Unset:
    # `<data_dir>/cache`. Safe to delete; an unwritable folder only means training in memory.
    model_cache_dir: Path | None = None
    # Native threads (OpenMP, BLAS) per process; 0 sizes them so that a worker's pool processes
    # x threads fit the cores (app/runtime/threads.py). On 2 cores, 2 OpenMP threads beside another
    # process's OpenMP threads made a 0.05 s `learned` prediction take 1-12 s.
    native_threads: int = Field(default=0, ge=0)

    # Finished runs and studies older than this many days are deleted nightly (0: kept forever).
    retention_days: float = Field(default=0, ge=0)
    # When beat applies the retention (UTC crontab), and how many rows one transaction deletes.
    retention_cron: str = "30 3 * * *"
    retention_batch: int = Field(default=500, gt=0)

    # Connections each process keeps open to PostgreSQL (SQLAlchemy's pool_size), and how many
    # more it may open for a burst (closed again when returned). The API runs its endpoints in
    # up to 40 threads: with 5, as before, 8 concurrent POSTs opened and closed a connection
    # per request (a PostgreSQL backend started each time) and queued for the rest.
    db_pool_size: int = Field(default=20, gt=0)
    db_max_overflow: int = Field(default=20, ge=0)

    # Network faults (docs/operations.md, "Timeouts"). A peer cut off by a partition that drops
    # packets closes nothing: without these a connection waits ~15 minutes (Linux tcp_retries2)
    # before it fails. libpq gives up connecting after `db_connect_timeout_s` (whole seconds).
    # A PostgreSQL connection that gets no TCP acknowledgement or keepalive answer for
    # `db_dead_after_s` is declared dead on both ends: the client's statement fails (a 503, a
    # task retry), and the server ends the cut-off client's session, releasing its row locks so
    # another delivery can claim the run. Acknowledgements come from the kernel within
    # milliseconds however busy PostgreSQL is, so 10 s of silence is the network, not load.
    # (libpq waits at least 2 s; three keepalive probes a second apart need 4.)
    db_connect_timeout_s: int = Field(default=5, ge=2)
    db_dead_after_s: int = Field(default=10, ge=4)
    # Every synchronous Redis command (publish, ack, result, progress) fails after
    # `redis_socket_timeout_s` instead of waiting on a dead connection; Valkey answers them in
    # milliseconds, and kombu's blocking read of the queues (BRPOP, 1 s) is not bound by it. A
    # connection idle for `redis_health_check_s` is pinged before use, and a worker whose queue
    # read got no answer for 1 + `redis_health_check_s` drops it and reconnects.
    redis_connect_timeout_s: float = Field(default=5, gt=0)
    redis_socket_timeout_s: float = Field(default=10, gt=1)
    redis_health_check_s: int = Field(default=10, gt=0)

    # Operating it (README "Operating it"). /metrics answers only a scraper presenting
    # `Authorization: Bearer <metrics_token>`; empty: /metrics does not exist (404).
    metrics_token: str = ""
    # Each worker's Prometheus exporter (0: none); its pool processes write their samples to
    # files in `worker_metrics_dir` (default `<data_dir>/metrics/<worker hostname>`), emptied
    # when the worker starts.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_dir: Path | None = None
    # "text" (human-readable, the default) or "json" (one JSON object per line).
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # OpenTelemetry traces go to this OTLP/HTTP collector (its base URL, `http://host:4318`: the
    # spans go to `/v1/traces` under it); empty: no tracing. The standard variable works too.
    otlp_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("HMS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    # The spans' `service.name`; empty: `hms-api` for the API, `hms-worker` for workers.
    otel_service_name: str = ""

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> Settings:
        limits = (
            self.run_time_limit_s,
            self.task_soft_time_limit_s,
            self.task_time_limit_s,
            self.visibility_timeout_s,
        )
        if list(limits) != sorted(set(limits)):
            raise ValueError(
                "need run_time_limit_s < task_soft_time_limit_s < task_time_limit_s < "
                "visibility_timeout_s, or a long task is redelivered while it still runs"
            )
        return self

    @property
    def run_memory_budget_mb(self) -> int:
        """`run_memory_mb`, or this machine's memory less 1 GB over the pool processes."""
        if self.run_memory_mb:
            return self.run_memory_mb
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        return max(256, (total_mb - 1024) // self.worker_concurrency)

    @property
    def stale_running_after_s(self) -> float:
        """A running run or retrain not heard of for this long lost its worker."""
        return self.task_time_limit_s + 60.0

    @property
    def cache_dir(self) -> Path:
        """Where cached models live: `model_cache_dir`, else `<data_dir>/cache`."""
        return self.model_cache_dir or self.data_dir / "cache"

    @cached_property
    def bootstrap_keys(self) -> tuple[BootstrapKey, ...]:
        """HMS_API_KEYS parsed (validated when the settings are read)."""
        return parse_bootstrap_keys(self.api_keys)

    @model_validator(mode="after")
    def _bootstrap_keys_parse(self) -> Settings:
        parse_bootstrap_keys(self.api_keys)
        return self

    def require_database_url(self) -> str:
        return _required(self.database_url, "DATABASE_URL", "a PostgreSQL database")

    def require_redis_url(self) -> str:
        return _required(self.redis_url, "REDIS_URL", "a Redis-protocol server")


@dataclass(frozen=True)
class BootstrapKey:
    name: str
    key: str
    is_admin: bool


def parse_bootstrap_keys(text: str) -> tuple[BootstrapKey, ...]:
    """`name:key[:admin],...` -> keys; ValueError naming the entry that does not parse."""
    keys: list[BootstrapKey] = []
    entries = filter(None, (part.strip() for part in text.split(",")))
    for number, entry in enumerate(entries, start=1):
        name, _, rest = entry.partition(":")
        key, _, role = rest.partition(":")
        if not key or role not in ("", "admin"):
            # Not echoed: a malformed entry may be a bare key.
            raise ValueError(f"HMS_API_KEYS entry {number} is not name:key or name:key:admin")
        check_name(name)
        if any(known.name == name for known in keys):
            raise ValueError(f"HMS_API_KEYS names {name!r} twice")
        keys.append(BootstrapKey(name, key, role == "admin"))
    return tuple(keys)


def _required(url: str | None, variable: str, what: str) -> str:
    if not url:
        raise RuntimeError(
            f"{variable} is not set: start the system with `make run` (embedded servers) "
            f"or point {variable} at {what}."
        )
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
