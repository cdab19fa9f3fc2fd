"""How the API's documents read on a terminal: plain-text tables (columns padded to their widest
cell, a rule under the header), the same on a terminal and in a pipe, so `hms` output can be
read, diffed and grepped alike. `--json` prints the documents themselves instead (app/cli/).
A study reads as its progress while it runs and its statistics as tables, one per cell (the
document `app.studies.statistics.study_statistics` builds: its docstring for the fields).
"""

from __future__ import annotations

import json
import math
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
    if document.get("perf_model_version"):
        version = document["perf_model_version"]
        parts.append(f"the runtime schedulers decided with fitted kernel model v{version}")
    return "\n\n".join(parts)


def _perf_model(run: Mapping[str, Any]) -> str:
    """The kernel model a run decided with, e.g. "regression v3" (empty when none was fitted)."""
    version = run.get("perf_model_version")
    if not version:
        return ""
    return f"{run.get('spec', {}).get('perf_model', 'history')} v{version}"


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


def run_state_text(state: Mapping[str, Any]) -> str:
    """A run's state event as `--wait` shows it: "run 1a2b3c4d running: simulating heft (3/9)"."""
    phase = state.get("phase") if state["status"] == "running" else None
    text = f"run {str(state['id'])[:8]} {state['status']}"
    return f"{text}: {phase}" if phase else text


def run_fields(run: Mapping[str, Any]) -> str:
    """`GET /api/v1/runs/{id}`: one field per line."""
    fields = [
        ("id", run["id"]),
        ("status", run["status"]),
        ("progress", f"{run['progress']:.0%}"),
        ("phase", run.get("phase") or ""),
        ("attempts", str(run["attempts"])),
        ("error", run["error"] or ""),
        ("priority", str(run["priority"])),
        ("tenant", run["tenant"] or ""),
        ("policies", ", ".join(run["spec"].get("policies", []))),
        ("created", _moment(run["created_at"])),
        ("started", _moment(run["started_at"])),
        ("finished", _moment(run["finished_at"])),
        ("model version", run["model_version"] or ""),
        ("kernel model", _perf_model(run)),
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


def policy_list(policies: Sequence[Mapping[str, Any]]) -> str:
    """`GET /api/v1/policies`: per policy its name and what it does, then what it decides on and
    the paper it comes from (if any)."""
    width = max(len(policy["name"]) for policy in policies)
    lines = []
    for policy in policies:
        lines.append(f"{policy['name']:<{width}}  {policy['summary']}")
        lines.append(f"{'':<{width}}  decides on: {policy['knows']}")
        if policy.get("paper"):
            lines.append(f"{'':<{width}}  paper: {policy['paper']}")
    return "\n".join(lines)


def kernel_model_list(models: Sequence[Mapping[str, Any]]) -> str:
    """`GET /api/v1/policies/perf-models`: per model its name and what it predicts, then its
    paper (if any)."""
    width = max(len(model["name"]) for model in models)
    lines = []
    for model in models:
        lines.append(f"{model['name']:<{width}}  {model['summary']}")
        if model.get("paper"):
            lines.append(f"{'':<{width}}  paper: {model['paper']}")
    return "\n".join(lines)


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


def key_list(keys: Sequence[Mapping[str, Any]]) -> str:
    """`GET /api/v1/keys`: one line per key (never the key itself), under a header."""
    header = ("name", "role", "source", "state", "created")
    rows = [
        (
            key["name"],
            "admin" if key["admin"] else "tenant",
            key["source"],
            f"revoked {_moment(key['revoked_at'])}" if key["revoked_at"] else "active",
            _moment(key["created_at"]) or "-",
        )
        for key in keys
    ]
    return _table(header, rows, left={0, 1, 2, 3})


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


#: The study statuses after which nothing changes.
STUDY_ENDED = frozenset({"succeeded", "cancelled"})

#: Run statuses shown first in a study's progress, in this order; others follow by name.
_STATUS_ORDER = ("succeeded", "failed", "cancelled", "running", "queued")


def progress_text(study: Mapping[str, Any]) -> str:
    """'3/12 runs: succeeded 2, failed 1, queued 9' for a StudyOut document or a study's event."""
    counts: Mapping[str, int] = study["counts"]
    statuses = sorted(
        counts, key=lambda s: (_STATUS_ORDER.index(s) if s in _STATUS_ORDER else 99, s)
    )
    by_status = ", ".join(f"{status} {counts[status]}" for status in statuses)
    return f"{study['finished_runs']}/{study['total_runs']} runs: {by_status}"


def results_table(statistics: Mapping[str, Any]) -> str:
    """One table per cell, policies best first: wins, mean rank metric ± CI half-width, and the
    paired difference to the best with its CI and p-values."""
    rank_by, level = statistics["rank_by"], f"{statistics['confidence']:.0%}"
    metric, versus = f"{rank_by} ± {level} CI", f"vs best [{level} CI]"
    header = ("policy", "wins", metric, versus, "p_t", "p_wilcoxon")
    parts = []
    for cell in statistics["cells"]:
        rows = [_policy_row(policy, rank_by) for policy in cell["policies"]]
        table = text_table(header, rows) if rows else "no succeeded run: no statistics"
        parts.append(f"{_cell_title(cell)}\n{table}")
    footer = f"ranked by {rank_by}, lower is better; vs best: paired difference to the cell's best"
    return "\n\n".join([*parts, footer])


def _cell_title(cell: Mapping[str, Any]) -> str:
    values = "  ".join(f"{key}={_value(value)}" for key, value in cell["values"].items())
    runs = cell["runs"]
    counts = ", ".join(
        f"{runs.get(status, 0)} {status}" for status in ("succeeded", "failed", "cancelled")
    )
    title = f"cell {cell['cell']}" + (f"  {values}" if values else "")
    return f"{title}\nruns: {counts} (of {runs['total']})"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _policy_row(policy: Mapping[str, Any], rank_by: str) -> tuple[str, ...]:
    summary = policy["metrics"].get(rank_by, {})
    versus = policy["versus_best"] or {}
    return (
        policy["policy"],
        str(policy["wins"]),
        _mean_and_half_width(summary),
        _difference(versus),
        _p_value(versus.get("p_t")),
        _p_value(versus.get("p_wilcoxon")),
    )


def _mean_and_half_width(summary: Mapping[str, Any]) -> str:
    """'12.35 ± 0.42'; the mean alone with fewer than two samples; '' without any."""
    mean = summary.get("mean")
    if mean is None:
        return ""
    decimals = _decimals(mean)
    if summary.get("ci_high") is None:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {summary['ci_high'] - mean:.{decimals}f}"


def _difference(versus: Mapping[str, Any]) -> str:
    """'+2.66 [+1.20, +4.11]'; the difference alone without an interval; '' for the best."""
    difference = versus.get("mean_difference")
    if difference is None:
        return ""
    decimals = _decimals(difference)
    if versus.get("ci_low") is None:
        return f"{difference:+.{decimals}f}"
    low, high = versus["ci_low"], versus["ci_high"]
    return f"{difference:+.{decimals}f} [{low:+.{decimals}f}, {high:+.{decimals}f}]"


def _p_value(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _decimals(value: float) -> int:
    """Decimals that show `value` with 4 significant digits (at most 6, no exponent)."""
    if value == 0:
        return 3
    return min(6, max(0, 3 - math.floor(math.log10(abs(value)))))


def profile_list(profiles: Sequence[Mapping[str, Any]]) -> str:
    """Kernel profile summaries (GET /api/v1/profiles), one a line."""
    header = ("name", "owner", "source", "date", "kernels", "devices", "sizes", "timings")
    rows = [
        (
            p["name"],
            "shipped" if p["shipped"] else str(p["tenant"]),
            p["source"],
            p["date"],
            ",".join(p["kernels"]),
            ",".join(p["devices"]),
            f"{p['min_size']}-{p['max_size']}",
            str(p["timings"]),
        )
        for p in profiles
    ]
    return _table(header, rows, left={0, 1, 2, 3, 4, 5})


def profile_fields(profile: Mapping[str, Any]) -> str:
    """One kernel profile (GET /api/v1/profiles/{name}): who and what, then its mean times in
    milliseconds, a row per kernel, device and contention and a column per tile size b."""
    document = profile["document"]
    machine = document["provenance"]["machine"]
    fields = [
        ("name", profile["name"]),
        ("owner", "shipped" if profile["shipped"] else str(profile["tenant"])),
        ("source", f"{profile['source']}, {profile['date']}"),
        ("machine", machine["cpu"] + (f" + {machine['gpu']}" if machine["gpu"] else "")),
        ("timings", str(profile["timings"])),
    ]
    if profile["description"]:
        fields.append(("description", profile["description"]))
    return f"{_fields(fields)}\n\nmean ms per call, by tile size b\n{_timing_table(document)}"


def _timing_table(document: Mapping[str, Any]) -> str:
    sizes = sorted({timing["size"] for timing in document["timings"]})
    means: dict[tuple[str, str, str], dict[int, float]] = {}
    for timing in document["timings"]:
        key = (timing["kernel"], timing["device"], timing["contention"])
        means.setdefault(key, {})[timing["size"]] = timing["mean_s"] * 1000
    header = ("kernel", "device", "contention", *(str(size) for size in sizes))
    rows = [
        (*key, *(_milliseconds(means[key].get(size)) for size in sizes)) for key in sorted(means)
    ]
    return _table(header, rows, left={0, 1, 2})


def _milliseconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 1000 else f"{value:.4g}"
