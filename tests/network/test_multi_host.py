"""The whole system on five hosts of a real (namespaced) network: PostgreSQL, Valkey, the API
with Flower, and two worker hosts, each reaching the others by address (issue 23, item 1)."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.devstack.multihost import HOSTS, MultiHostStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiHostStack]:
    root = tmp_path_factory.mktemp("multihost")
    with MultiHostStack(root, prefix="hmsmh", subnet="10.77.1.0/24") as stack:
        yield stack


def _listening(stack: MultiHostStack, host: str) -> set[str]:
    """The local addresses of the TCP sockets listening in the host's namespace."""
    table = stack.network.run(host, ["ss", "-Hltn"], capture_output=True, text=True, check=True)
    return {line.split()[3].rsplit(":", 1)[0] for line in table.stdout.splitlines()}


def test_every_process_reaches_the_others_by_address_and_nothing_uses_loopback(stack):
    subnet = ipaddress.ip_network(stack.network.subnet)
    for service in stack.services.values():
        urls = [v for v in service.env.values() if "://" in v]
        assert len(urls) >= 3, service.env.keys()  # the database, the broker, the API
        for url in urls:
            host = urlsplit(url).hostname
            assert host is not None and ipaddress.ip_address(host) in subnet, (service.name, url)
        joined = " ".join([*service.env.values(), *service.argv])
        assert not re.search(r"127\.0\.0\.1|localhost|::1", joined), service.name
    for host in HOSTS:
        assert _listening(stack, host) <= {stack.network.ip(host)}, host
    # Something does listen where it should: the servers, the API and Flower.
    assert _listening(stack, "db") == {stack.network.ip("db")}
    assert _listening(stack, "broker") == {stack.network.ip("broker")}
    assert _listening(stack, "api") == {stack.network.ip("api")}
