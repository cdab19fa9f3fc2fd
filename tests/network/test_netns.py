"""app/devstack/netns.py: hosts that reach each other by address, and the faults it makes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from app.devstack.netns import Network

#: Echoes each line it receives on port 7000 of its host.
ECHO_SERVER = """
import socket
server = socket.create_server(("0.0.0.0", 7000))
print("listening", flush=True)
connection, _ = server.accept()
for line in connection.makefile("rb"):
    connection.sendall(line)
"""

#: Connects to argv[1]:7000, then for each line "SECONDS TEXT" on stdin sends TEXT and prints
#: what comes back within SECONDS, or "silence". TEXT "wait" only waits for the reply still owed.
ECHO_CLIENT = """
import socket, sys
connection = socket.create_connection((sys.argv[1], 7000), timeout=30)
print("connected", flush=True)
received = b""
for line in sys.stdin:
    seconds, text = line.split(" ", 1)
    if text.strip() != "wait":
        connection.sendall(text.encode())
    connection.settimeout(float(seconds))
    try:
        while b"\\n" not in received:
            received += connection.recv(4096)
        reply, received = received.split(b"\\n", 1)
        print(reply.decode(), flush=True)
    except TimeoutError:
        print("silence", flush=True)
"""

#: How long (s) a cut connection is watched for a reply that must not come. A longer wait only
#: makes the test slower: the cut drops every packet, however long one waits.
SILENCE_S = 1.0
#: How long (s) a reply that must come may take: after a heal, TCP retransmits on its backed-off
#: timer (seconds after a long cut), and the machine may be busy.
REPLY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    with Network(["alpha", "beta", "gamma"], prefix="hmsnt", subnet="10.77.9.0/24") as network:
        yield network


class Echo:
    """An echo server on `server` and a client on `client`, connected over the bridge."""

    def __init__(self, network: Network, client: str, server: str) -> None:
        self.server = network.popen(
            server, [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True
        )
        assert self.server.stdout is not None
        assert self.server.stdout.readline().strip() == "listening"
        argv = [sys.executable, "-c", ECHO_CLIENT, network.ip(server)]
        self.client = network.popen(
            client, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.client.stdout is not None
        assert self.client.stdout.readline().strip() == "connected"

    def say(self, line: str, within_s: float = REPLY_TIMEOUT_S) -> str:
        """Send `line`, return the reply that came within `within_s`, or "silence"."""
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write(f"{within_s} {line}\n")
        self.client.stdin.flush()
        return self.client.stdout.readline().strip()

    def close(self) -> None:
        for process in (self.client, self.server):
            process.kill()
            process.wait()


@pytest.fixture
def echo(network: Network) -> Iterator[Echo]:
    """An echo connection from alpha to beta."""
    echo = Echo(network, "alpha", "beta")
    yield echo
    echo.close()


def test_hosts_reach_each_other_by_address(network, echo):
    assert {network.ip(host) for host in network.hosts} == {"10.77.9.1", "10.77.9.2", "10.77.9.3"}
    assert echo.say("hello") == "hello"


def test_a_cut_connection_stalls_and_carries_on_after_heal(network, echo):
    assert echo.say("before") == "before"
    network.cut("alpha", "beta")
    try:
        assert echo.say("during", within_s=SILENCE_S) == "silence"
        other = Echo(network, "alpha", "gamma")  # the cut is between alpha and beta only
        assert other.say("elsewhere") == "elsewhere"
        other.close()
    finally:
        network.heal("alpha", "beta")
    # TCP retransmits what the cut dropped: the same connection carries on.
    assert echo.say("wait") == "during"
    assert echo.say("after") == "after"


def test_an_isolated_host_is_silent_until_it_rejoins(network, echo):
    network.isolate("beta")
    try:
        assert echo.say("during", within_s=SILENCE_S) == "silence"
    finally:
        network.rejoin("beta")
    assert echo.say("wait") == "during"
    assert echo.say("after") == "after"


def test_close_deletes_the_namespaces_and_the_bridge():
    network = Network(["one"], prefix="hmsnc", subnet="10.77.8.0/24")
    network.popen("one", ["sleep", "600"])
    network.close()
    network.close()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "hmsnc-" not in namespaces
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "hmsnc-" not in links
