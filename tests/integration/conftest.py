from collections.abc import Iterator

import pytest

from tests.conftest import Servers


@pytest.fixture(autouse=True)
def _clean(clean_state: Servers) -> Iterator[None]:
    yield
