"""Hosts on a real network on one machine: one Linux network namespace per host, each joined
to a bridge in the root namespace by a veth pair, so that processes talk to each other by IP
address over the bridge as they would between machines. Needs root and iproute2 (`ip netns`).

The root namespace gets the subnet's last address on the bridge, so that a test or a browser
on this machine reaches every host. Faults are made with iproute2 alone (this machine has no
iptables or nft, and `tc` loads neither actions nor the prio qdisc):
- `cut(a, b)` adds a blackhole route to the other's address in both namespaces: packets between
  the two are dropped silently, an established TCP connection stalls (sends are buffered,
  reads time out) and carries on once `heal` deletes the routes and TCP retransmits;
- `isolate(host)` takes the host's interface down, cutting it from every other host and the
  root namespace; `rejoin` brings it up again (the kernel restores its subnet route).

Used by tests/network/, `python -m app.devstack.multihost` and bench/.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

#: Linux's limit on an interface name (IFNAMSIZ less the terminating NUL).
MAX_INTERFACE_NAME = 15
#: The interface of each host inside its namespace (each namespace has its own names).
HOST_INTERFACE = "eth0"
#: How long (s) a process has to exit after SIGTERM before it is killed.
STOP_GRACE_S = 10.0


class NetworkError(RuntimeError):
    """A namespace, link or route could not be set up."""


class Network:
    """Namespaces `<prefix>-<host>` for `hosts` on a bridge `<prefix>-br`, with the hosts at the
    first addresses of `subnet` in the order given and the root namespace at its last one.

    Two networks at once need distinct prefixes and subnets. Leftovers of a crashed earlier run
    with the same prefix are removed first."""

    def __init__(
        self, hosts: Sequence[str], *, prefix: str = "hms", subnet: str = "10.77.0.0/24"
    ) -> None:
        network = ipaddress.ip_network(subnet)
        addresses = list(network.hosts())
        if len(hosts) + 1 > len(addresses):
            raise ValueError(f"subnet {subnet} has no room for {len(hosts)} hosts and the bridge")
        if len(set(hosts)) != len(hosts):
            raise ValueError(f"hosts must be distinct: {list(hosts)}")
        self.prefix = prefix
        self.bridge = f"{prefix}-br"
        self.prefixlen = network.prefixlen
        self.subnet = str(network)
        self.gateway = str(addresses[-1])
        self._ips = {host: str(address) for host, address in zip(hosts, addresses, strict=False)}
        for name in [self.bridge, *map(self.namespace, hosts)]:
            if len(name) > MAX_INTERFACE_NAME:
                raise ValueError(f"{name!r} is longer than {MAX_INTERFACE_NAME} characters")
        self._processes: list[subprocess.Popen[Any]] = []
        self._closed = False
        self._remove_leftovers()
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    @property
    def hosts(self) -> list[str]:
        return list(self._ips)

    def namespace(self, host: str) -> str:
        """The host's namespace, also the name of its veth end on the bridge."""
        return f"{self.prefix}-{host}"

    def ip(self, host: str) -> str:
        return self._ips[host]

    def popen(
        self,
        host: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> subprocess.Popen[Any]:
        """`argv` inside the host's namespace, in its own process group; `close()` ends it.
        `env` replaces the environment when given (as subprocess's does)."""
        process = subprocess.Popen(
            self._exec_argv(host, argv),
            env=dict(env) if env is not None else None,
            start_new_session=True,
            **kw,
        )
        self._processes.append(process)
        return process

    def run(self, host: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        """`argv` inside the host's namespace, to completion (subprocess.run's keywords)."""
        return subprocess.run(self._exec_argv(host, argv), **kw)

    def isolate(self, host: str) -> None:
        """Cut the host from every other host (and the root namespace): its link goes down."""
        _ip("-n", self.namespace(host), "link", "set", HOST_INTERFACE, "down")

    def rejoin(self, host: str) -> None:
        _ip("-n", self.namespace(host), "link", "set", HOST_INTERFACE, "up")

    def cut(self, a: str, b: str) -> None:
        """Drop every packet between `a` and `b` silently; both still reach everyone else."""
        for here, there in ((a, b), (b, a)):
            _ip("-n", self.namespace(here), "route", "replace", "blackhole", f"{self.ip(there)}/32")

    def heal(self, a: str, b: str) -> None:
        for here, there in ((a, b), (b, a)):
            _ip(
                "-n", self.namespace(here), "route", "del", "blackhole", f"{self.ip(there)}/32",
                check=False,
            )  # fmt: skip

    def close(self) -> None:
        """End every process started here or still inside a namespace, then delete the
        namespaces, links and bridge. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _stop_groups(self._processes)
        for host in self._ips:
            _end_namespace(self.namespace(host))
        _ip("link", "del", self.bridge, check=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exec_argv(self, host: str, argv: Sequence[str]) -> list[str]:
        if host not in self._ips:
            raise KeyError(f"no host {host!r} in this network: {self.hosts}")
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def _create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host, address in self._ips.items():
            namespace = self.namespace(host)
            _ip("netns", "add", namespace)
            _ip("link", "add", namespace, "type", "veth", "peer", "name", HOST_INTERFACE,
                "netns", namespace)  # fmt: skip
            _ip("link", "set", namespace, "master", self.bridge, "up")
            own = f"{address}/{self.prefixlen}"
            _ip("-n", namespace, "addr", "add", own, "dev", HOST_INTERFACE)
            _ip("-n", namespace, "link", "set", HOST_INTERFACE, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")

    def _remove_leftovers(self) -> None:
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
        for line in listed.splitlines():
            name = line.split(" ", 1)[0]
            if name.startswith(f"{self.prefix}-"):
                _end_namespace(name)
        _ip("link", "del", self.bridge, check=False)


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _end_namespace(namespace: str) -> None:
    """Kill whatever still runs inside (a daemonized server), then delete the namespace, which
    deletes its veth pair with it."""
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
    for pid in pids.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            continue
    _ip("netns", "del", namespace, check=False)
    _ip("link", "del", namespace, check=False)


def _stop_groups(processes: Sequence[subprocess.Popen[Any]]) -> None:
    """SIGTERM every process's group at once (Celery's warm shutdown takes seconds each), then
    SIGKILL what is left of each after STOP_GRACE_S."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(STOP_GRACE_S)


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
