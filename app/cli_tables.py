"""How the API's documents read on a terminal: plain-text tables (columns padded to their widest
cell, a rule under the header), the same on a terminal and in a pipe, so `hms` output can be
read, diffed and grepped alike. `--json` prints the documents themselves instead (app/cli.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: A metric's column: its key in the result document, its header, how a value is shown.
Column = tuple[str, str, Callable[[float], str]]

#: The metrics a run can be ranked by, in the table's order after the rank metric.
RANKABLE: tuple[Column, ...] = (
    ("makespan", "makespan s", lambda v: f"{v:.3f}"),
    ("mean_flow_time", "mean flow s", lambda v: f"{v:.4f}"),
    ("p95_flow_time", "p95 flow s", lambda v: f"{v:.4f}"),
    ("mean_slowdown", "slowdown", lambda v: f"{v:.2f}"),
    ("energy", "energy kJ", lambda v: f"{v / 1000:.2f}"),
    ("cost", "cost", lambda v: f"{v:.4f}"),
)
TRAILING_HEADER = ("util", "SLR", "speedup", "vs bound", "vs oracle")


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, the first left-aligned, the others right-aligned,
    under a header and a rule."""
    return _table(header, rows, left={0})


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: set[int]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(
            text.ljust(width) if i in left else text.rjust(width)
            for i, (text, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def leaderboard(results: Sequence[Mapping[str, Any]], rank_by: str | None) -> str:
    """Result documents (best first, as the API and `hms simulate --json` give them) as a table,
    the rank metric leading after the policy."""
    columns = sorted(RANKABLE, key=lambda column: column[0] != rank_by)
    header = ("#", "policy", *(title for _, title, _ in columns), *TRAILING_HEADER)
    return _table(header, [_result_row(result, columns) for result in results], left={1})


def _result_row(r: Mapping[str, Any], columns: Sequence[Column]) -> tuple[str, ...]:
    return (
        "" if r["rank"] is None else str(r["rank"]),
        r["policy"],
        *("" if r[key] is None else show(r[key]) for key, _, show in columns),
        f"{r['mean_utilization']:.1%}",
        _number(r["slr"]),
        _number(r["speedup"]),
        _percent(r["gap_to_bound"]),
        _percent(r["gap_to_oracle"]),
    )


def run_results(document: Mapping[str, Any]) -> str:
    """`GET /api/v1/runs/{id}/results`: the leaderboard, what it is ranked by, the model used."""
    rank_by = document["rank_by"]
    parts = [leaderboard(document["results"], rank_by)]
    parts.append(f"ranked by {rank_by or 'makespan'} (lower is better)")
    if document.get("model_version"):
        note = f"learned used performance model {document['model_version']}"
        parts.append(note + (f": {document['model_note']}" if document.get("model_note") else ""))
    return "\n\n".join(parts)


def run_page(page: Mapping[str, Any]) -> str:
    """`GET /api/v1/runs`: one line per run, newest first."""
    header = ("id", "status", "progress", "priority", "policies", "created")
    rows = [
        (
            run["id"],
            run["status"],
            f"{run['progress']:.0%}",
            str(run["priority"]),
            ",".join(run["spec"].get("policies", [])),
            _moment(run["created_at"]),
        )
        for run in page["items"]
    ]
    return f"{text_table(header, rows)}\n{_page_footer(page, 'runs')}"


def run_fields(run: Mapping[str, Any]) -> str:
    """`GET /api/v1/runs/{id}`: one field per line."""
    fields = [
        ("id", run["id"]),
        ("status", run["status"]),
        ("progress", f"{run['progress']:.0%}"),
        ("attempts", str(run["attempts"])),
        ("error", run["error"] or ""),
        ("priority", str(run["priority"])),
        ("tenant", run["tenant"] or ""),
        ("policies", ", ".join(run["spec"].get("policies", []))),
        ("created", _moment(run["created_at"])),
        ("started", _moment(run["started_at"])),
        ("finished", _moment(run["finished_at"])),
        ("model version", run["model_version"] or ""),
        ("study", f"{run['study_id']} cell {run['study_cell']}" if run.get("study_id") else ""),
    ]
    return _fields(fields)


def study_page(page: Mapping[str, Any]) -> str:
    """`GET /api/v1/studies`: one line per study, newest first."""
    header = ("id", "name", "status", "runs ended", "created")
    rows = [
        (
            study["id"],
            study["name"],
            study["status"],
            f"{study['finished_runs']}/{study['total_runs']}",
            _moment(study["created_at"]),
        )
        for study in page["items"]
    ]
    return f"{text_table(header, rows)}\n{_page_footer(page, 'studies')}"


def study_fields(study: Mapping[str, Any]) -> str:
    """`GET /api/v1/studies/{id}`: one field per line, its runs by status."""
    counts = ", ".join(f"{status} {n}" for status, n in sorted(study["counts"].items()))
    fields = [
        ("id", study["id"]),
        ("name", study["name"]),
        ("status", study["status"]),
        ("runs ended", f"{study['finished_runs']}/{study['total_runs']} ({study['progress']:.0%})"),
        ("runs by status", counts),
        ("grid", ", ".join(study["spec"].get("grid", {}))),
        ("repetitions", str(study["spec"].get("repetitions", ""))),
        ("tenant", study["tenant"] or ""),
        ("created", _moment(study["created_at"])),
        ("finished", _moment(study["finished_at"])),
    ]
    return _fields(fields)


def model_versions(versions: Sequence[Mapping[str, Any]]) -> str:
    """`GET /api/v1/models`: one line per version, newest first; * marks the active one."""
    header = ("version", "active", "status", "holdout MAE", "R²", "samples", "trained", "reason")
    rows = []
    for version in versions:
        scores = version["metrics"].get("candidate", {}).get("ln_seconds", {})
        rows.append(
            (
                f"v{version['version']}",
                "*" if version["is_active"] else "",
                version["status"],
                _score(scores.get("mae")),
                _score(scores.get("r2")),
                str(version["sample_count"]),
                _moment(version["trained_at"]),
                version["reason"],
            )
        )
    table = _table(header, rows, left={0, 1, 2, 7})
    return f"{table}\nholdout MAE and R² of ln seconds; * the version `learned` uses"


def retrain_job(job: Mapping[str, Any]) -> str:
    """`GET /api/v1/models/retrains/{id}`: one field per line."""
    version = job["model_version"]
    fields = [
        ("id", job["id"]),
        ("status", job["status"]),
        ("progress", f"{job['progress']:.0%}"),
        ("outcome", job["message"] or ""),
        ("model version", "" if version is None else f"v{version}"),
        ("trigger", job["trigger"]),
        ("created", _moment(job["created_at"])),
        ("finished", _moment(job["finished_at"])),
    ]
    return _fields(fields)


def _fields(fields: Sequence[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name.ljust(width)}  {value}".rstrip() for name, value in fields)


def _page_footer(page: Mapping[str, Any], what: str) -> str:
    shown = len(page["items"])
    first = page["offset"] + 1 if shown else page["offset"]
    return f"{first}-{page['offset'] + shown} of {page['total']} {what}"


def _moment(iso: str | None) -> str:
    """'2026-11-29 10:00:01' (UTC, as the API gives it, to the second); '' for none."""
    return "" if iso is None else iso.replace("T", " ")[:19]


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
