"""What `hms up` writes on stdout (app/devstack/output.py): honcho's prefixed lines in text, one
JSON object per line naming its process with HMS_LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import UTC, datetime

from honcho.printer import Message

from app.devstack.output import LauncherOutput, json_line
from app.runtime.logs import json_formatter

READ_AT = datetime(2026, 12, 6, 7, 0, 1, tzinfo=UTC)


def test_a_json_log_line_keeps_its_fields_and_gets_the_process():
    record = logging.LogRecord("hms.runs", logging.INFO, __file__, 1, "run done", None, None)
    line = json_formatter().format(record)
    wrapped = json.loads(json_line("worker.1", line, READ_AT) or "")
    assert wrapped == {"process": "worker.1", **json.loads(line)}


def test_a_plain_line_becomes_a_message_with_the_time_it_was_read():
    line = "[I 261206 07:00:01 command:168] Visit me at http://127.0.0.1:5555"
    assert json.loads(json_line("flower.1", line, READ_AT) or "") == {
        "process": "flower.1",
        "time": "2026-12-06T07:00:01+00:00",
        "message": line,
    }


def test_json_that_is_not_an_object_and_broken_json_are_messages():
    for line in ("[1, 2]", "42", '{"level": "INFO", "message": "cut'):
        assert json.loads(json_line("api.1", line, READ_AT) or "")["message"] == line


def test_the_process_named_by_the_launcher_wins_over_a_field_of_the_line():
    wrapped = json.loads(json_line("beat.1", '{"process": 7, "message": "m"}', READ_AT) or "")
    assert wrapped == {"process": "beat.1", "message": "m"}


def test_blank_lines_are_dropped():
    assert json_line("worker.1", "   ", READ_AT) is None


def message(name: str, data: bytes) -> Message:
    return Message("line", data, datetime(2026, 12, 6, 7, 0, 1), name, None)


def test_json_output_writes_only_json_objects_each_naming_its_process():
    stream = io.StringIO()
    output = LauncherOutput("json", stream)
    output.say("starting embedded Valkey")
    output.write(message("worker.1", b" -------------- celery@host v5.7.0\n"))
    output.write(message("worker.1", b"\n"))
    output.write(message("system", b"worker.1 started (pid=42)\n"))
    output.write(message("api.1", b'{"level": "INFO", "message": "ready"}\n'))
    output.announce(["ready after 3.0 s", "Ctrl-C stops everything."])
    objects = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(o["process"], o["message"]) for o in objects] == [
        ("launcher", "starting embedded Valkey"),
        ("worker.1", " -------------- celery@host v5.7.0"),
        ("launcher", "worker.1 started (pid=42)"),
        ("api.1", "ready"),
        ("launcher", "ready after 3.0 s"),
        ("launcher", "Ctrl-C stops everything."),
    ]


def test_text_output_prefixes_process_lines_and_frames_the_banner():
    stream = io.StringIO()
    output = LauncherOutput("text", stream)
    output.width = len("worker.1")
    output.say("stopping Valkey")
    output.write(message("api.1", b'{"level": "INFO"}\n'))
    output.announce(["ready after 3.0 s", "Ctrl-C"])
    assert stream.getvalue().splitlines() == [
        "hms up: stopping Valkey",
        '07:00:01 api.1    | {"level": "INFO"}',
        "",
        "=================",
        "ready after 3.0 s",
        "Ctrl-C",
        "=================",
        "",
    ]


class _InterruptedStream(io.StringIO):
    """A stream whose first write is interrupted by a signal handler that writes through the
    same output, in the same thread, as honcho's SIGINT handler does ("SIGINT received")."""

    def __init__(self, output_of: list[LauncherOutput]) -> None:
        super().__init__()
        self.output_of = output_of
        self.interrupted = False

    def write(self, text: str) -> int:
        if not self.interrupted:
            self.interrupted = True
            self.output_of[0].write(message("system", b"SIGINT received\n"))
        return super().write(text)


def test_a_signal_handler_writing_while_its_thread_writes_does_not_hang():
    for log_format in ("text", "json"):
        output_of: list[LauncherOutput] = []
        stream = _InterruptedStream(output_of)
        output = LauncherOutput(log_format, stream)
        output_of.append(output)
        writer = threading.Thread(
            target=output.write, args=(message("api.1", b"GET /health 200\n"),), daemon=True
        )
        writer.start()
        writer.join(60)  # microseconds when it works; with a plain Lock it never ends
        assert not writer.is_alive(), f"{log_format}: the nested write waited for its own lock"
        assert "SIGINT received" in stream.getvalue() and "GET /health 200" in stream.getvalue()
