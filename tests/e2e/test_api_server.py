"""The API as the Procfile serves it keeps an idle HTTP connection open past uvicorn's default
keep-alive (5 s), which equals httpx's pool expiry: a client reusing a connection as the server
closed it got a reset instead of an answer (settings.api_keep_alive_s)."""

from __future__ import annotations

import socket
import time

import httpx

from tests.processes import ProcfileProcess, free_port, wait_until

#: uvicorn's own `--timeout-keep-alive`.
UVICORN_DEFAULT_KEEP_ALIVE_S = 5


def answer(connection: socket.socket) -> bytes:
    """Send GET /health/live on the open connection and read its whole answer (b"" if the server
    closed the connection)."""
    connection.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def test_the_procfiles_api_keeps_an_idle_connection_past_uvicorns_default(servers):
    port = free_port()
    api = ProcfileProcess("api", {"HMS_API_PORT": str(port)})

    def live() -> bool:
        if not api.alive():
            raise RuntimeError(api.log()[-3000:])
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).is_success
        except httpx.HTTPError:
            return False

    try:
        wait_until(live, 120, "the Procfile's API live")
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            assert answer(connection).startswith(b"HTTP/1.1 200")
            time.sleep(UVICORN_DEFAULT_KEEP_ALIVE_S + 1)  # idle: longer than uvicorn would keep it
            assert answer(connection).startswith(b"HTTP/1.1 200")  # the same connection answers
    finally:
        api.stop()
