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

#: Connects to argv[1]:7000, then for each line on stdin sends it and prints what comes back
#: within argv[2] seconds, or "silence". A line "wait" only waits for the reply still owed.
ECHO_CLIENT = """
import socket, sys
connection = socket.create_connection((sys.argv[1], 7000), timeout=30)
print("connected", flush=True)
received = b""
for line in sys.stdin:
    if line.strip() != "wait":
        connection.sendall(line.encode())
    connection.settimeout(float(sys.argv[2]))
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
        argv = [sys.executable, "-c", ECHO_CLIENT, network.ip(server), str(SILENCE_S)]
        self.client = network.popen(
            client, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.client.stdout is not None
        assert self.client.stdout.readline().strip() == "connected"

    def say(self, line: str) -> str:
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write(line + "\n")
        self.client.stdin.flush()
        return self.client.stdout.readline().strip()

    def close(self) -> None:
        for process in (self.client, self.server):
            process.kill()
            process.wait()


def test_hosts_reach_each_other_by_address_and_not_by_loopback(network):
    ips = {network.ip(host) for host in network.hosts}
    assert ips == {"10.77.9.1", "10.77.9.2", "10.77.9.3"}
    echo = Echo(network, "alpha", "beta")
    try:
        assert echo.say("hello") == "hello"
    finally:
        echo.close()


def test_a_cut_connection_stalls_and_carries_on_after_heal(network):
    echo = Echo(network, "alpha", "beta")
    try:
        assert echo.say("before") == "before"
        network.cut("alpha", "beta")
        try:
            assert echo.say("during") == "silence"
            other = Echo(network, "alpha", "gamma")  # the cut is between alpha and beta only
            assert other.say("elsewhere") == "elsewhere"
            other.close()
        finally:
            network.heal("alpha", "beta")
        # TCP retransmits what the cut dropped: the same connection carries on.
        assert echo.say("wait") == "during"
        assert echo.say("after") == "after"
    finally:
        echo.close()


def test_an_isolated_host_is_silent_until_it_rejoins(network):
    echo = Echo(network, "alpha", "beta")
    try:
        network.isolate("beta")
        try:
            assert echo.say("during") == "silence"
        finally:
            network.rejoin("beta")
        assert echo.say("wait") == "during"
        assert echo.say("after") == "after"
    finally:
        echo.close()


def test_close_deletes_the_namespaces_and_the_bridge():
    network = Network(["one"], prefix="hmsnc", subnet="10.77.8.0/24")
    network.popen("one", ["sleep", "600"])
    network.close()
    network.close()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "hmsnc-" not in namespaces
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "hmsnc-" not in links
