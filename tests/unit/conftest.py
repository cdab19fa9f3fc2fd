"""Unit tests: the code alone, in this process, with no servers (`make test-unit`).

A test here that asks for the embedded servers fails with where it belongs instead of starting
them; one that needs PostgreSQL, the broker or a worker goes to tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def servers() -> None:
    pytest.fail(
        "a unit test starts no servers: a test that needs PostgreSQL or Valkey (the `servers`, "
        "`clean_database` or `clean_state` fixtures) belongs in tests/integration"
    )


@pytest.fixture(scope="package", autouse=True)
def limited_native_threads() -> Iterator[None]:
    """This process's OpenMP and BLAS threads limited to its share of the cores, as `hms simulate`
    limits its own (app/threads.py): with a thread per core, scikit-learn's spinning OpenMP
    threads beside another busy process made training the bootstrap model take 73 s instead of
    3.5 s on a 2-core VM, and the unit tests 2-3 minutes instead of well under one."""
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime the limit must reach)

    from app.runtime.threads import limit_native_threads

    limiter = limit_native_threads()
    yield
    limiter.restore_original_limits()
