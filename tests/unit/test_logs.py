"""app/runtime/logs.py: the context on log records, the text and JSON formats."""

import json
import logging

from app.runtime.logs import (
    ContextFilter,
    LogContext,
    TextFormatter,
    bound,
    json_formatter,
    set_context,
)


def record(message: str = "hello") -> logging.LogRecord:
    made = logging.LogRecord("hms.test", logging.INFO, __file__, 1, message, (), None)
    ContextFilter().filter(made)
    return made


def test_a_record_carries_the_bound_context_and_only_inside_the_block():
    with bound(LogContext(request_id="r-1", tenant="team-a", run_id="abc")):
        inside = record()
    outside = record()
    assert (inside.request_id, inside.tenant, inside.run_id) == ("r-1", "team-a", "abc")
    assert not hasattr(inside, "study_id")
    assert not hasattr(outside, "request_id")


def test_a_context_filled_in_later_shows_on_later_records():
    with bound(LogContext(request_id="r-2")) as context:
        context.tenant = "team-b"  # what the tenant dependency does
        assert record().tenant == "team-b"


def test_set_context_binds_until_cleared():
    set_context(LogContext(task_id="t-1", attempt=2))
    try:
        assert record().task_id == "t-1" and record().attempt == 2
    finally:
        set_context(None)
    assert not hasattr(record(), "task_id")


def test_json_lines_have_level_time_logger_message_and_context():
    with bound(LogContext(request_id="r-3", run_id="abc")):
        line = json.loads(json_formatter().format(record("ran %s")))
    assert line["level"] == "INFO" and line["logger"] == "hms.test"
    assert line["message"] == "ran %s" and line["time"].endswith("+00:00")
    assert line["request_id"] == "r-3" and line["run_id"] == "abc"


def test_json_lines_leave_out_uvicorns_coloured_copy_of_the_message():
    started = record("Started server process [%d]")
    started.color_message = "Started server process [\x1b[36m%d\x1b[0m]"  # uvicorn's extra
    line = json.loads(json_formatter().format(started))
    assert "color_message" not in line and line["message"] == "Started server process [%d]"


def test_text_lines_end_with_the_context():
    with bound(LogContext(request_id="r-4", tenant="team-a")):
        text = TextFormatter().format(record())
    assert text.endswith("INFO hms.test: hello [request_id=r-4 tenant=team-a]")
    assert TextFormatter().format(record()).endswith("hello")
