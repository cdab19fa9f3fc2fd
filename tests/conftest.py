"""Shared fixtures: embedded PostgreSQL and Valkey for the whole session (started only when a
test needs them), a clean database and broker per test, and real worker processes.

The environment is set here, before any project module reads its settings.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.processes import Api


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_ROOT = Path(tempfile.mkdtemp(prefix="hms-tests-"))
# The suite's own folder (mkdtemp makes it 0700): PostgreSQL's system user, when we are root, may
# pass through it to its data folder, which otherwise would move to /var/lib/hms-postgres.
_ROOT.chmod(0o711)
_PG_PORT, _REDIS_PORT = _free_port(), _free_port()
_PG_PASSWORD, _REDIS_PASSWORD = secrets.token_hex(8), secrets.token_hex(8)
TEST_API_KEY = "test-key-" + secrets.token_hex(4)  # an admin key (tenant "tests")
#: Two ordinary tenants' keys.
TEAM_A_KEY = "team-a-key-" + secrets.token_hex(4)
TEAM_B_KEY = "team-b-key-" + secrets.token_hex(4)

#: The README's example RunSpec.
EXAMPLE_SPEC: dict = {
    "workload": {"kind": "synthetic", "num_tasks": 2000, "seed": 7},
    "cluster": {"cpus": 8, "gpus": 4},
    "policies": ["round_robin", "random", "greedy"],
    "priority": 5,
}

#: A run that takes several seconds on a worker (about 5 s here), with progress all along.
LONG_SPEC: dict = {
    "workload": {"kind": "synthetic", "num_tasks": 1_000_000, "seed": 3},
    "cluster": {"cpus": 8, "gpus": 4},
    "policies": ["eft", "heft", "oracle"],
}

#: The shipped kernel profile the kernel-model tests run on.
KERNEL_PROFILE = "v100-skylake-mcsweeney2020"


def tiled_spec(tile_size: int = 256, **fields: object) -> dict:
    """A Cholesky on 6 x 6 tiles (56 tasks) on the shipped V100 profile, heft and cpu_only:
    runs whose tasks call kernels, small enough to run in-process."""
    workload = {"kind": "tiled", "factorization": "cholesky", "tiles": 6, "tile_size": tile_size}
    return {
        "workload": workload,
        "cluster": {"cpus": 3, "gpus": 1, "profile": KERNEL_PROFILE},
        "policies": ["heft", "cpu_only"],
        **fields,
    }


os.environ.update(
    {
        "DATABASE_URL": f"postgresql+psycopg2://postgres:{_PG_PASSWORD}@127.0.0.1:{_PG_PORT}/hms",
        "REDIS_URL": f"redis://:{_REDIS_PASSWORD}@127.0.0.1:{_REDIS_PORT}/0",
        "HMS_API_KEYS": f"tests:{TEST_API_KEY}:admin,team-a:{TEAM_A_KEY},team-b:{TEAM_B_KEY}",
        "HMS_DATA_DIR": str(_ROOT / "data"),
        "HMS_PROGRESS_INTERVAL_S": "0.2",
        # High, so tests never trip over it; the rate-limit test lowers it.
        "HMS_SUBMISSIONS_PER_MINUTE": "1000000",
    }
)

from app.devstack.postgres import EmbeddedPostgres  # noqa: E402
from app.devstack.valkey import EmbeddedValkey  # noqa: E402
from app.tenancy import Tenant  # noqa: E402

#: The tenant of TEST_API_KEY, for tests that call the services directly.
ADMIN = Tenant("tests", is_admin=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-runs",
        type=int,
        default=150,
        help="how many runs the soak (tests/e2e/test_soak.py) sends through the workers it "
        "kills (default 150)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has a node id of its own.

    pytest 9.2 builds a test's node id from its `originalname` and parametrize ids, and
    schemathesis (4.32) gives each per-operation item of `@schema.parametrize()` the function's
    name as `originalname`, so test_api_schema.py's 32 operations shared one node id. pytest-xdist
    schedules and reports by node id: it ran one of them and reported success for the 31 it never
    ran. Such an item gets its full name (`test_…[POST /api/v1/runs]`) back, and a collection with
    two tests under one node id stops here instead of losing one.
    """
    from _pytest.nodeid import coerce_node_id

    for item in items:
        if not item.nodeid.endswith("::" + item.name):
            item._id = coerce_node_id(f"{item.parent.nodeid}::{item.name}")  # type: ignore[union-attr]
    counts = Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, count in counts.items() if count > 1)
    if shared:
        raise pytest.UsageError(f"tests that share a node id: {shared}")


class Servers:
    def __init__(self) -> None:
        self.postgres = EmbeddedPostgres(_ROOT / "postgres", _PG_PORT, _PG_PASSWORD, durable=False)
        self.valkey = EmbeddedValkey(_ROOT / "valkey", _REDIS_PORT, _REDIS_PASSWORD)

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.valkey.url


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    from app.db.migrate import upgrade

    servers = Servers()
    servers.postgres.start()
    servers.valkey.start()
    upgrade(servers.database_url)
    yield servers
    servers.valkey.stop()
    servers.postgres.stop()


def empty_tables() -> None:
    """Every table of the models (a new model's too, with no edit here), identities reset;
    alembic_version is no model's, so the schema's revision stays."""
    from sqlalchemy import text

    from app.db.models import Base
    from app.db.session import get_engine

    with get_engine().begin() as connection:
        quote = connection.dialect.identifier_preparer.format_table
        tables = ", ".join(quote(table) for table in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def empty_queues(redis_url: str) -> None:
    """Only the queues' message lists go: kombu's exchange bindings stay, or publishes would be
    dropped."""
    import redis

    broker = redis.Redis.from_url(redis_url)
    for pattern in ("simulations*", "training*", "unacked*", "celery-task-meta-*"):
        for key in broker.scan_iter(match=pattern):
            broker.delete(key)


@pytest.fixture(scope="session")
def api(servers: Servers) -> Iterator[Api]:
    """The API under uvicorn, one process for the whole session (started when a test first needs
    it): a start took 6-19 s on 2 cores at load average 6-10, and it keeps nothing between
    requests that the tests rely on being fresh (its state is the database and the broker,
    emptied per test). Tests that need other settings start an `Api(env=...)` of their own."""
    from tests.processes import Api

    process = Api()
    yield process
    process.stop()


@pytest.fixture
def clean_database(servers: Servers) -> Servers:
    """Empty tables before the test."""
    empty_tables()
    return servers


@pytest.fixture
def clean_state(clean_database: Servers) -> Servers:
    """Empty tables and empty queues before the test."""
    empty_queues(clean_database.redis_url)
    return clean_database


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, into memory: a span is in `spans.get_finished_spans()` as soon
    as it ends (SimpleSpanProcessor exports in the caller's thread)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from app.runtime import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.shut_down()
