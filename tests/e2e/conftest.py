from collections.abc import Iterator

import pytest

from tests.conftest import Servers
from tests.processes import Worker


@pytest.fixture(scope="module")
def worker(servers: Servers) -> Iterator[Worker]:
    """One worker process with one pool process: runs execute strictly one at a time."""
    process = Worker(concurrency=1)
    yield process
    process.stop()
