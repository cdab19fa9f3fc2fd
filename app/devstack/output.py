"""What `hms up` writes on stdout: its own lines and every line its processes print.

Text (the default) is honcho's: `time name | line`. With HMS_LOG_FORMAT=json every line is one
JSON object carrying the process it came from, so a log shipper can take stdout as it is: a
process's own JSON log line gets a `process` field, and anything else it prints (Celery's
banner, Flower's tornado log, a traceback on a crash) becomes a `message` with the time it was
read. The launcher's own lines, honcho's ("worker.1 started") included, are process `launcher`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from honcho.printer import Message, Printer

from app.runtime.logs import LogFormat

#: The process name of the launcher's own lines in JSON (honcho calls its own `system`).
LAUNCHER = "launcher"
_HONCHO = "system"


def json_line(process: str, line: str, read_at: datetime) -> str | None:
    """`line` (without its newline) as one JSON object with `process`; None for a blank line.

    A line that already is a JSON object keeps its fields and gets `process` (the launcher knows
    which process printed it, whatever the line says); any other line is wrapped as `message`,
    with `read_at` (local time if naive) as `time` in UTC, as app/runtime/logs.py writes it.
    """
    if not line.strip():
        return None
    fields: dict[str, Any] | None = None
    if line.lstrip().startswith("{"):
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fields = {key: value for key, value in parsed.items() if key != "process"}
    if fields is None:
        fields = {"time": read_at.astimezone(UTC).isoformat(), "message": line.rstrip()}
    return json.dumps({"process": process, **fields}, ensure_ascii=False)


class LauncherOutput:
    """honcho's printer (it calls `write(message)` for each line a process prints, and sets
    `width`) plus `say` and `announce` for the launcher's own lines. Thread-safe: the banner
    is written from another thread than the processes' lines; no line is split by another."""

    def __init__(self, log_format: LogFormat, stream: IO[str]) -> None:
        self.log_format = log_format
        self._stream = stream
        self._text = Printer(stream)
        # Reentrant: honcho's SIGINT/SIGTERM handler prints ("SIGINT received") through
        # `write`, in the main thread, which the signal may have interrupted inside `write`
        # itself; with a plain Lock that handler waited forever for the lock its own thread held,
        # and Ctrl-C stopped nothing (tests/e2e/test_launcher.py, twice in CI).
        self._lock = threading.RLock()

    @property
    def width(self) -> int:
        return int(self._text.width)

    @width.setter
    def width(self, width: int) -> None:
        self._text.width = width

    def write(self, message: Message) -> None:
        """One chunk of a process's output (honcho's `line` message: bytes, one line)."""
        if self.log_format == "text":
            with self._lock:
                self._text.write(message)
            return
        data = message.data
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        process = LAUNCHER if message.name == _HONCHO else message.name
        self._write_json(process, text.splitlines(), message.time)

    def say(self, message: str) -> None:
        """One line of the launcher's own: `hms up: message` in text."""
        if self.log_format == "json":
            self._write_json(LAUNCHER, [message], datetime.now(UTC))
        else:
            self._write_text([f"hms up: {message}"])

    def announce(self, lines: list[str]) -> None:
        """The banner: framed by rules in text, one object per line in JSON."""
        if self.log_format == "json":
            self._write_json(LAUNCHER, lines, datetime.now(UTC))
            return
        rule = "=" * max(map(len, lines))
        self._write_text(["", rule, *lines, rule, ""])

    def _write_text(self, lines: Iterable[str]) -> None:
        with self._lock:
            self._stream.write("".join(f"{line}\n" for line in lines))
            self._stream.flush()

    def _write_json(self, process: str, lines: Iterable[str], read_at: datetime) -> None:
        objects = [json_line(process, line, read_at) for line in lines]
        with self._lock:
            self._stream.write("".join(f"{obj}\n" for obj in objects if obj is not None))
            self._stream.flush()
