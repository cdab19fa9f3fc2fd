from collections.abc import Iterator

import pytest

from tests.conftest import Servers
from tests.processes import Api


@pytest.fixture(autouse=True)
def _clean(clean_state: Servers) -> Iterator[None]:
    yield


@pytest.fixture(scope="module")
def api(servers: Servers) -> Iterator[Api]:
    """The API under uvicorn, one process per test module."""
    process = Api()
    yield process
    process.stop()
