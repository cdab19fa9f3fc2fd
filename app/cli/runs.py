"""`hms submit | status | results | runs | cancel | delete`: a run through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from app.cli import tables
from app.cli.client import ApiClient, json_option, page_options, show, show_as, show_page, with_api
from app.cli.simulate import load_spec

#: The run statuses after which nothing changes.
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@click.command()
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--idempotency-key", help="Repeat a submission safely: same key, same run.")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the run (a progress bar on a terminal) until it ends, then print its leaderboard.",
)
@json_option
@with_api
def submit(
    spec_file: Path,
    idempotency_key: str | None,
    wait: bool,
    as_json: bool,
    api_url: str | None,
    api_key: str | None,
) -> None:
    """Submit the RunSpec in SPEC_FILE (JSON) and print the run's id (--json: the run). A
    workload `path` (relative to SPEC_FILE) is read here and sent inline. With --wait, follow it
    live, then print its leaderboard (--json: the ended run); exit 1 unless it succeeded."""
    api = ApiClient(api_url, api_key)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    document = inline_files(load_spec(spec_file))
    run = api.call("POST", "/api/v1/runs", json=document, headers=headers)
    if not wait:
        show_as(run, as_json, lambda r: str(r["id"]))
        return
    if not as_json:
        click.echo(run["id"])
    api.follow(
        f"/api/v1/runs/{run['id']}/events",
        lambda state: state["status"] in TERMINAL,
        tables.run_state_text,
    )
    run = api.call("GET", f"/api/v1/runs/{run['id']}")
    if as_json:
        show(run)
    elif run["status"] == "succeeded":
        click.echo(tables.run_results(api.call("GET", f"/api/v1/runs/{run['id']}/results")))
    if run["status"] != "succeeded":
        reason = f": {run['error']}" if run["error"] else ""
        raise click.ClickException(f"run {run['id']} {run['status']}{reason}")


def inline_files(document: dict[str, Any]) -> dict[str, Any]:
    """The API does not read files: send a workload `path`'s content inline instead."""
    workload = document.get("workload")
    if not isinstance(workload, dict) or "path" not in workload:
        return document
    content = Path(workload.pop("path")).read_text()
    if workload.get("kind") == "wfcommons":
        workload["data"] = json.loads(content)
    else:
        workload["text"] = content
    return document


@click.command()
@click.argument("run_id")
@json_option
@with_api
def status(run_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Show a run: status, progress, attempts, error, timestamps."""
    run = ApiClient(api_url, api_key).call("GET", f"/api/v1/runs/{run_id}")
    show_as(run, as_json, tables.run_fields)


@click.command()
@click.argument("run_id")
@json_option
@with_api
def results(run_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Show a succeeded run's leaderboard: per policy every metric, best first by the run's
    rank metric."""
    document = ApiClient(api_url, api_key).call("GET", f"/api/v1/runs/{run_id}/results")
    show_as(document, as_json, tables.run_results)


@click.command()
@page_options("runs")
def runs(**options: Any) -> None:
    """List runs, newest first."""
    show_page("/api/v1/runs", tables.run_page, **options)


@click.command()
@click.argument("run_id")
@json_option
@with_api
def cancel(run_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Cancel a queued or running run (it stays readable) and show it as `hms status` does."""
    run = ApiClient(api_url, api_key).call("POST", f"/api/v1/runs/{run_id}/cancel")
    show_as(run, as_json, tables.run_fields)


@click.command()
@click.argument("run_id")
@with_api
def delete(run_id: str, api_url: str | None, api_key: str | None) -> None:
    """Delete a run that ended, with its results, schedules and training samples."""
    ApiClient(api_url, api_key).request("DELETE", f"/api/v1/runs/{run_id}")
    click.echo(f"deleted run {run_id}")


COMMANDS = (submit, status, results, runs, cancel, delete)
