"""Every example in README.md and docs/*.md runs as written (docs/testing.md, "The documentation
examples", says how they are found).

Fenced blocks are read by their language: `json`/`jsonc` documents are validated by the project's
own validators (a RunSpec, a study, a kernel profile), `sh` command lines are run (`hms simulate`)
or parsed (other `hms` commands) through click against the current code, or matched against the
FastAPI app's routes (`curl`), and `python` blocks are executed. A block right after
`<!-- file: NAME -->` is also the file NAME that the commands and the Python examples may read.
No server is needed.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import click
import pytest
from click.testing import CliRunner
from starlette.routing import Match

from app.cli.main import main
from app.profilespec import ProfileSpec
from app.runspec import RunSpec, build_scenario, kernel_profile
from app.sim.profile import Profile
from app.studies.spec import StudySpec, plan_runs

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Files the examples name that the docs do not spell out: the test suite's own fixtures.
FIXTURE_FILES = {"montage.json": ROOT / "tests" / "fixtures" / "wfcommons" / "montage.json"}
#: What an `{id}` in a command stands for.
SOME_ID = str(uuid.UUID(int=1))
#: The port of the API in the examples (the others are Flower's and a worker exporter's).
API_PORT = 8000

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>[^`]*)$")
_FILE_MARK = re.compile(r"^<!-- file: (?P<name>[\w.-]+) -->$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
#: curl options followed by a value.
_CURL_VALUE_OPTIONS = frozenset({"-H", "-X", "-d", "--data", "--data-binary", "-o", "-u"})


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # relative to the repository root
    line: int  # of the opening fence, from 1
    language: str
    text: str
    file: str | None  # the file it also is, from a `<!-- file: NAME -->` line just before it

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].startswith(indent + fence):
            body.append(lines[end][len(indent) :])
            end += 1
        mark = _FILE_MARK.match(lines[index - 1].strip()) if index > 0 else None
        yield Block(
            page=str(path.relative_to(ROOT)),
            line=index + 1,
            language=(opening["info"].split() or [""])[0],
            text="\n".join(body) + "\n",
            file=mark["name"] if mark else None,
        )
        index = end + 1


BLOCKS = [block for page in PAGES for block in read_blocks(page)]


def strip_comments(text: str) -> str:
    """JSON from JSONC: `//` to the end of the line goes, outside strings."""
    out, in_string, escaped, index = [], False, False, 0
    while index < len(text):
        char = text[index]
        if in_string:
            escaped = char == "\\" and not escaped
            in_string = char != '"' or escaped
        elif char == '"':
            in_string = True
        elif text.startswith("//", index):
            index = text.find("\n", index)
            if index < 0:
                break
            continue
        out.append(char)
        index += 1
    return "".join(out)


def json_document(block: Block) -> Any:
    text = strip_comments(block.text) if block.language == "jsonc" else block.text
    return json.loads(text)


JSON_BLOCKS = [block for block in BLOCKS if block.language in ("json", "jsonc")]


def _documents(kind: str) -> list[Any]:
    """pytest parameters (block, document) of the JSON examples of one kind."""
    found = []
    for block in JSON_BLOCKS:
        try:
            document = json_document(block)
        except json.JSONDecodeError:
            continue  # test_every_json_example_parses reports it
        if isinstance(document, dict) and _kind_of(document) == kind:
            found.append(pytest.param(block, document, id=str(block)))
    return found


def _kind_of(document: dict[str, Any]) -> str | None:
    if "base" in document and "grid" in document:
        return "study"
    if "workload" in document:
        return "runspec"
    if "schema_version" in document and "timings" in document:
        return "profile"
    return None


def example_files() -> dict[str, str]:
    """NAME -> content of every `<!-- file: NAME -->` block, plus the fixtures the docs name."""
    files = {name: path.read_text() for name, path in FIXTURE_FILES.items()}
    for block in BLOCKS:
        if block.file is not None:
            assert files.get(block.file, block.text) == block.text, (
                f"{block}: {block.file} is given twice, differently"
            )
            files[block.file] = block.text
    return files


@pytest.fixture
def in_example_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory is a folder holding the examples' files."""
    for name, content in example_files().items():
        (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# Command lines


@dataclass(frozen=True)
class Command:
    block: Block
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.block}: {shlex.join(self.argv)}"


def commands(block: Block) -> Iterator[Command]:
    """The simple commands of a shell block: comments dropped, lines joined at a trailing
    backslash, split at line ends (outside quotes), `;`, `|` and `&&`, leading VAR=value
    assignments removed."""
    text = strip_shell_comments(block.text).replace("\\\n", " ")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    current: list[str] = []
    for token in [*lexer, "\n"]:
        if token.strip(";|&\n"):
            current.append(token)
            continue
        while current and _ENV_ASSIGNMENT.match(current[0]):
            current.pop(0)
        if current:
            yield Command(block, tuple(current))
        current = []


def strip_shell_comments(text: str) -> str:
    """The text without `# ...` comments: a `#` outside quotes at a word's start, to the line's
    end (a quoted string may span lines)."""
    out: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        out.append(char)
        index += 1
    return "".join(out)


COMMANDS = [
    command for block in BLOCKS if block.language in ("sh", "bash") for command in commands(block)
]


def _is_hms(command: Command) -> bool:
    return command.argv[0] == "hms" or command.argv[0].endswith("/hms")


HMS_SIMULATE = [c for c in COMMANDS if _is_hms(c) and c.argv[1:2] == ("simulate",)]
HMS_OTHER = [c for c in COMMANDS if _is_hms(c) and c.argv[1:2] != ("simulate",)]
CURL = [c for c in COMMANDS if c.argv[0] in ("curl", "hcurl")]
PYTHON_BLOCKS = [block for block in BLOCKS if block.language == "python"]


def hms_args(command: Command) -> list[str]:
    return [SOME_ID if arg == "{id}" else arg for arg in command.argv[1:]]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: str | None


def curl_request(command: Command) -> Request:
    method, url, body = None, None, None
    args = iter(command.argv[1:])
    for arg in args:
        if arg in _CURL_VALUE_OPTIONS:
            value = next(args)
            if arg == "-X":
                method = value
            elif arg in ("-d", "--data", "--data-binary"):
                body = value
        elif not arg.startswith("-"):
            url = arg
    assert url is not None, f"{command}: no URL"
    return Request(method or ("POST" if body is not None else "GET"), url, body)


def route_match(method: str, path: str) -> Match:
    """How the FastAPI app routes this request, asked as Starlette asks it: FULL (a route takes
    the path and method), PARTIAL (the path, not the method) or NONE."""
    from api.main import app

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    found = {route.matches(scope)[0] for route in app.routes}
    return next((match for match in (Match.FULL, Match.PARTIAL) if match in found), Match.NONE)


# The tests


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=str)
def test_every_json_example_parses(block: Block) -> None:
    json_document(block)


def uploaded_examples(name: str) -> Profile:
    """The profiles a reader of the docs has: the shipped ones and the docs' example profiles
    (a RunSpec may name one, as it would name the tenant's upload)."""
    for block in JSON_BLOCKS:
        try:
            document = json_document(block)
        except json.JSONDecodeError:
            continue
        if (
            isinstance(document, dict)
            and _kind_of(document) == "profile"
            and document["name"] == name
        ):
            return ProfileSpec.model_validate(document).to_profile()
    return kernel_profile(name)


@pytest.mark.parametrize(("block", "document"), _documents("runspec"))
def test_runspec_examples_validate_and_build(block: Block, document: dict[str, Any]) -> None:
    spec = RunSpec.model_validate(document)
    # The workload and cluster it describes, as a worker builds them.
    build_scenario(spec, uploaded_examples)


@pytest.mark.parametrize(("block", "document"), _documents("study"))
def test_study_examples_validate_and_plan_every_cell(block: Block, document: Any) -> None:
    study = StudySpec.model_validate(document)
    assert len(list(plan_runs(study))) == study.total_runs


@pytest.mark.parametrize(("block", "document"), _documents("profile"))
def test_profile_examples_validate(block: Block, document: Any) -> None:
    ProfileSpec.model_validate(document).to_profile()


@pytest.mark.parametrize("command", HMS_SIMULATE, ids=str)
def test_hms_simulate_examples_run(command: Command, in_example_folder: Path) -> None:
    result = CliRunner().invoke(main, hms_args(command))
    assert result.exit_code == 0, f"{command}\n{result.output}\n{result.exception!r}"
    assert result.output.strip()


@pytest.mark.parametrize("command", HMS_OTHER, ids=str)
def test_other_hms_examples_parse(command: Command, in_example_folder: Path) -> None:
    """The command and every option exist, and the arguments fit (without calling the API)."""
    group: click.Command = main
    args = hms_args(command)
    while isinstance(group, click.Group):
        name, *args = args
        found = group.get_command(click.Context(group), name)
        assert found is not None, f"{command}: no command {name!r}"
        group = found
    group.make_context(group.name, args)


def _url(request: Request) -> SplitResult:
    return urlsplit(request.url if "://" in request.url else f"http://{request.url}")


#: The curl examples addressed to the API (a worker's metrics exporter on another port is not
#: the API; its series are checked against a live worker in tests/e2e/test_operations.py).
CURL_TO_API = [c for c in CURL if _url(curl_request(c)).port == API_PORT]


@pytest.mark.parametrize("command", CURL_TO_API, ids=str)
def test_curl_examples_name_a_route_and_send_a_valid_body(
    command: Command, in_example_folder: Path
) -> None:
    request = curl_request(command)
    parts = _url(request)
    match = route_match(request.method, parts.path)
    assert match is not Match.NONE, f"{command}: the API has no {parts.path}"
    assert match is Match.FULL, f"{command}: {parts.path} takes no {request.method}"
    if request.body is None:
        return
    text = request.body
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    document = json.loads(text)
    if (request.method, parts.path) == ("POST", "/api/v1/runs"):
        build_scenario(RunSpec.model_validate(document))
    elif (request.method, parts.path) == ("POST", "/api/v1/studies"):
        study = StudySpec.model_validate(document)
        assert len(list(plan_runs(study))) == study.total_runs


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_python_examples_run(block: Block, in_example_folder: Path) -> None:
    exec(compile(block.text, str(block), "exec"), {"__name__": "__docs_example__"})


def test_the_examples_are_found() -> None:
    """A change to the pages or to this reader that loses the examples fails here; the counts
    are floors below what the pages hold (November 2026), not exact."""
    found = {
        "runspec": len(_documents("runspec")),
        "study": len(_documents("study")),
        "files": sum(block.file is not None for block in BLOCKS),
        "hms simulate": len(HMS_SIMULATE),
        "other hms": len(HMS_OTHER),
        "curl": len(CURL),
        "python": len(PYTHON_BLOCKS),
    }
    floors = {
        "runspec": 6,
        "study": 1,
        "files": 3,
        "hms simulate": 6,
        "other hms": 15,
        "curl": 10,
        "python": 1,
    }
    assert all(found[kind] >= floor for kind, floor in floors.items()), found
