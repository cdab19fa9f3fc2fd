"""`--wait`'s pieces without servers: reading an event stream's text, and the progress bar (on a
terminal, redrawn in place; elsewhere, silent). Following a real stream, reconnecting included:
tests/integration/test_cli.py."""

import io

from app.cli.follow import LiveBar, ServerEvent, parse_events

BODY = """id: 17
event: state
data: {"id":"r1","status":"running","progress":0.5}

: keepalive

event: deleted
data: {"id":"r1"}

"""


def test_events_are_read_with_their_name_id_and_json_data_and_comments_skipped():
    assert list(parse_events(BODY.splitlines())) == [
        ServerEvent("state", 17, {"id": "r1", "status": "running", "progress": 0.5}),
        ServerEvent("deleted", None, {"id": "r1"}),
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


STATES = [
    {"status": "running", "progress": 0.25},
    {"status": "succeeded", "progress": 1.0},
]


def test_the_bar_is_redrawn_in_place_on_a_terminal(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with LiveBar(lambda state: f"run {state['status']}") as bar:
        for state in STATES:
            bar(state)
    written = terminal.getvalue()
    assert "run succeeded" in written and "100%" in written
    assert "\x1b[" in written  # cursor controls: the same line is redrawn, not appended to


def test_the_bar_writes_nothing_when_stderr_is_not_a_terminal(monkeypatch):
    captured = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured)
    with LiveBar(lambda state: state["status"]) as bar:
        for state in STATES:
            bar(state)
    assert captured.getvalue() == ""
