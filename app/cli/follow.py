"""`--wait` in the `hms` commands: follow a run's or a study's event stream (the API's Server-Sent
Events, `GET .../events`) until it ends, showing one progress bar on stderr that is redrawn in
place on a terminal (rich) and stays silent otherwise, so scripts read only stdout.

A dropped connection or a stream the server closed before the end (its `timeout_s`) is resumed
with `Last-Event-ID`: the server sends only states newer than the last one received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from app.cli.errors import error_message

#: Consecutive failed connections after which `follow` gives up (one second apart).
MAX_RECONNECTS = 10
#: Seconds before reconnecting to a stream the server closed before the end.
RECONNECT_PAUSE_S = 0.25
#: Seconds without a byte after which a stream counts as dropped: the server sends a keepalive
#: comment every 15 s of silence.
READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ServerEvent:
    name: str
    id: int | None
    data: dict[str, Any]


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events of a `text/event-stream` body, given line by line (comments skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                event_id = fields.get("id", "")
                yield ServerEvent(
                    fields.get("event", "message"),
                    int(event_id) if event_id.isdigit() else None,
                    json.loads(fields["data"]),
                )
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")


def follow(
    client: httpx.Client,
    path: str,
    ended: Callable[[Mapping[str, Any]], bool],
    show: Callable[[Mapping[str, Any]], None],
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the event stream at `path` until a state that has `ended`; `show` each state;
    return that one. Reconnects (with Last-Event-ID) when the connection drops
    or the server closes the stream early. ClickException if the run or study is deleted, on an
    error answer, or after MAX_RECONNECTS failed connections in a row."""
    last_id: int | None = None
    failures = 0
    while True:
        headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
        try:
            with client.stream(
                "GET", path, headers=headers, params=params, timeout=_stream_timeout()
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise click.ClickException(error_message(response))
                for event in parse_events(response.iter_lines()):
                    failures = 0
                    if event.name == "deleted":
                        raise click.ClickException(f"{event.data['id']} was deleted")
                    last_id = event.id
                    show(event.data)
                    if ended(event.data):
                        return event.data
            time.sleep(RECONNECT_PAUSE_S)  # the server closed it early (its timeout_s)
        except httpx.TransportError as exc:
            failures += 1
            if failures >= MAX_RECONNECTS:
                raise click.ClickException(f"lost the event stream {path}: {exc}") from exc
            time.sleep(1)


def _stream_timeout() -> httpx.Timeout:
    return httpx.Timeout(10.0, read=READ_TIMEOUT_S)


class LiveBar:
    """One progress bar on stderr, redrawn in place; nothing at all when stderr is no terminal."""

    def __init__(self, describe: Callable[[Mapping[str, Any]], str]) -> None:
        self.describe = describe
        console = Console(stderr=True)
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )

    def __enter__(self) -> LiveBar:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("waiting", total=1.0)
        return self

    def __call__(self, state: Mapping[str, Any]) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(
                self.task, completed=state["progress"], description=self.describe(state)
            )

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
