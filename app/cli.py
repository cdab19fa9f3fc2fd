"""`hms`: start the system locally, and talk to its API."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
import httpx

from app import cli_tables
from app.cli_events import LiveBar, error_detail, follow
from app.cli_simulate import load_spec, simulate
from app.cli_study import STUDY_ENDED, progress_text, results_table
from app.launcher import up as launch
from app.settings import get_settings

#: The run statuses after which nothing changes.
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: The retrain job statuses after which nothing changes.
JOB_ENDED = frozenset({"succeeded", "skipped", "failed"})
#: Seconds between two polls of a retrain job by `hms retrain --wait` (jobs have no event stream).
JOB_POLL_S = 0.5


@click.group()
def main() -> None:
    """Hybrid ML Scheduler: compare placement policies on CPU/GPU clusters."""


main.add_command(simulate)


@main.command()
def up() -> None:
    """Start PostgreSQL, Valkey, the API, a worker, beat and Flower (Ctrl-C stops all)."""
    sys.exit(launch())


class _Api:
    def __init__(self, url: str | None, key: str | None) -> None:
        settings = get_settings()
        headers = {"X-API-Key": key or settings.api_key} if (key or settings.api_key) else {}
        self.client = httpx.Client(base_url=url or settings.api_url, headers=headers, timeout=30)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON document."""
        return self.request(method, path, **kwargs).json()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer; an error answer exits with its status and detail."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach the API at {self.client.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise click.ClickException(f"HTTP {response.status_code}: {error_detail(response)}")
        return response

    def follow(
        self,
        path: str,
        ended: Callable[[Mapping[str, Any]], bool],
        describe: Callable[[Mapping[str, Any]], str],
    ) -> dict[str, Any]:
        """Follow the event stream at `path` until a state has `ended`, with one progress bar
        on stderr (on a terminal); that state."""
        try:
            with LiveBar(describe) as bar:
                return follow(self.client, path, ended, bar)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach the API at {self.client.base_url}: {exc}"
            ) from exc


_api_options = [
    click.option("--api", "api_url", help="API base URL (default: HMS_API_URL or localhost:8000)."),
    click.option("--key", "api_key", help="API key (default: HMS_API_KEY)."),
]


def _with_api(command: Any) -> Any:
    for option in reversed(_api_options):
        command = option(command)
    return command


def _show(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def _show_as(document: Any, as_json: bool, table: Callable[[Any], str]) -> None:
    """The API's JSON document with --json, else its table."""
    if as_json:
        _show(document)
    else:
        click.echo(table(document))


_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON document instead of a table."
)


def _page_options(what: str) -> Any:
    """The options of a listing: --status, --limit, --offset, --json, and the API's."""

    def decorate(command: Any) -> Any:
        for option in reversed(
            [
                click.option("--status", "status_filter", help=f"Only {what} in this status."),
                click.option("--limit", default=20, show_default=True),
                click.option("--offset", default=0, show_default=True),
                _json_option,
            ]
        ):
            command = option(command)
        return _with_api(command)

    return decorate


def _show_page(
    path: str,
    render: Any,
    status_filter: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    api_url: str | None,
    api_key: str | None,
) -> None:
    """GET a page of `path` (filtered by status) and show it as JSON or as `render`'s table."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status_filter:
        params["status"] = status_filter
    _show_as(_Api(api_url, api_key).call("GET", path, params=params), as_json, render)


@main.command()
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--idempotency-key", help="Repeat a submission safely: same key, same run.")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the run (a progress bar on a terminal) until it ends, then print its leaderboard.",
)
@_json_option
@_with_api
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
    api = _Api(api_url, api_key)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    document = _inline_files(load_spec(spec_file))
    run = api.call("POST", "/api/v1/runs", json=document, headers=headers)
    if not wait:
        _show_as(run, as_json, lambda r: str(r["id"]))
        return
    if not as_json:
        click.echo(run["id"])
    api.follow(
        f"/api/v1/runs/{run['id']}/events",
        lambda state: state["status"] in TERMINAL,
        lambda state: f"run {str(state['id'])[:8]} {state['status']}",
    )
    run = api.call("GET", f"/api/v1/runs/{run['id']}")
    if as_json:
        _show(run)
    elif run["status"] == "succeeded":
        click.echo(cli_tables.run_results(api.call("GET", f"/api/v1/runs/{run['id']}/results")))
    if run["status"] != "succeeded":
        reason = f": {run['error']}" if run["error"] else ""
        raise click.ClickException(f"run {run['id']} {run['status']}{reason}")


def _inline_files(document: dict[str, Any]) -> dict[str, Any]:
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


@main.command()
@click.argument("run_id")
@_json_option
@_with_api
def status(run_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Show a run: status, progress, attempts, error, timestamps."""
    run = _Api(api_url, api_key).call("GET", f"/api/v1/runs/{run_id}")
    _show_as(run, as_json, cli_tables.run_fields)


@main.command()
@click.argument("run_id")
@_json_option
@_with_api
def results(run_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Show a succeeded run's leaderboard: per policy every metric, best first by the run's
    rank metric."""
    document = _Api(api_url, api_key).call("GET", f"/api/v1/runs/{run_id}/results")
    _show_as(document, as_json, cli_tables.run_results)


@main.command()
@_page_options("runs")
def runs(**options: Any) -> None:
    """List runs, newest first."""
    _show_page("/api/v1/runs", cli_tables.run_page, **options)


@main.command()
@click.argument("run_id")
@_with_api
def cancel(run_id: str, api_url: str | None, api_key: str | None) -> None:
    """Cancel a queued or running run (it stays readable)."""
    _show(_Api(api_url, api_key).call("POST", f"/api/v1/runs/{run_id}/cancel"))


@main.command()
@click.argument("run_id")
@_with_api
def delete(run_id: str, api_url: str | None, api_key: str | None) -> None:
    """Delete a run that ended, with its results, schedules and training samples."""
    _Api(api_url, api_key).request("DELETE", f"/api/v1/runs/{run_id}")
    click.echo(f"deleted run {run_id}")


@main.command()
@_json_option
@_with_api
def models(as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """List the performance model versions `learned` uses, newest first, the active one marked."""
    versions = _Api(api_url, api_key).call("GET", "/api/v1/models")
    _show_as(versions, as_json, cli_tables.model_versions)


@main.command()
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the job (a progress bar on a terminal) until it ends, then print its outcome.",
)
@_json_option
@_with_api
def retrain(wait: bool, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Retrain the performance model now (admin keys only) and print the job's id (--json: the
    job). With --wait, follow it, then print its outcome; exit 1 if it failed."""
    api = _Api(api_url, api_key)
    job = api.call("POST", "/api/v1/models/retrain")
    if not wait:
        _show_as(job, as_json, lambda j: str(j["id"]))
        return
    with LiveBar(lambda j: f"retrain {str(j['id'])[:8]} {j['status']}") as bar:
        bar(job)
        while job["status"] not in JOB_ENDED:
            time.sleep(JOB_POLL_S)
            job = api.call("GET", f"/api/v1/models/retrains/{job['id']}")
            bar(job)
    _show_as(job, as_json, cli_tables.retrain_job)
    if job["status"] == "failed":
        raise click.ClickException(f"retrain {job['id']} failed: {job['message']}")


@main.group("keys")
def keys_group() -> None:
    """API keys, one per tenant (needs an admin key)."""


@keys_group.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see every tenant's work, retrain, manage keys.")
@_with_api
def create_key(name: str, admin: bool, api_url: str | None, api_key: str | None) -> None:
    """Create a key for tenant NAME and print it: it is shown this once."""
    created = _Api(api_url, api_key).call(
        "POST", "/api/v1/keys", json={"name": name, "admin": admin}
    )
    click.echo(created["key"])
    role = "admin" if created["admin"] else "tenant"
    click.echo(f"{role} key for {name!r}: store it now, it cannot be shown again", err=True)


@keys_group.command("list")
@_with_api
def list_keys(api_url: str | None, api_key: str | None) -> None:
    """Every key's name, role, source and dates (never the keys themselves)."""
    for key in _Api(api_url, api_key).call("GET", "/api/v1/keys"):
        role = "admin" if key["admin"] else "tenant"
        state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
        created = key["created_at"] or "-"
        click.echo(f"{key['name']:<24} {role:<7} {key['source']:<12} {state:<40} {created}")


@keys_group.command("revoke")
@click.argument("name")
@_with_api
def revoke_key(name: str, api_url: str | None, api_key: str | None) -> None:
    """Revoke NAME's active key: refused from its next request on (its work stays)."""
    _Api(api_url, api_key).request("POST", f"/api/v1/keys/{name}/revoke")
    click.echo(f"revoked the key of {name!r}")


@main.group("study")
def study_group() -> None:
    """Studies: a grid over a RunSpec's fields, each cell repeated, compared with statistics."""


@study_group.command("submit")
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--idempotency-key", help="Repeat a submission safely: same key, same study.")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the study (a progress bar on a terminal) until it ends, then print its results.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON, not the id or tables.")
@_with_api
def submit_study(
    spec_file: Path,
    idempotency_key: str | None,
    wait: bool,
    as_json: bool,
    api_url: str | None,
    api_key: str | None,
) -> None:
    """Submit the StudySpec in SPEC_FILE (JSON) and print the study's id (--json: the study).
    With --wait, follow it live, then print its results tables (--json: the results document;
    exit 1 if it was cancelled)."""
    api = _Api(api_url, api_key)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    study = api.call("POST", "/api/v1/studies", json=_study_document(spec_file), headers=headers)
    if as_json and not wait:
        _show(study)
        return
    if not as_json:
        click.echo(study["id"])
    if wait:
        _wait_then_show_results(api, study, as_json)


def _wait_then_show_results(api: _Api, study: dict[str, Any], as_json: bool) -> None:
    api.follow(
        f"/api/v1/studies/{study['id']}/events",
        lambda state: state["status"] in STUDY_ENDED,
        progress_text,
    )
    study = api.call("GET", f"/api/v1/studies/{study['id']}")
    if study["status"] == "cancelled":
        if as_json:
            _show(study)
        raise click.ClickException(f"study {study['id']} was cancelled")
    _show_results(api, study["id"], as_json)


def _study_document(spec_file: Path) -> dict[str, Any]:
    """The StudySpec in `spec_file`, its base's workload `path` (relative to the file) sent
    inline."""
    document = load_spec(spec_file)
    base = document.get("base") if isinstance(document, dict) else None
    if isinstance(base, dict) and isinstance(base.get("workload"), dict):
        path = base["workload"].get("path")
        if isinstance(path, str):
            base["workload"]["path"] = str((spec_file.parent / path).resolve())
            _inline_files(base)
    return document


def _show_results(api: _Api, study_id: str, as_json: bool) -> None:
    document = api.call("GET", f"/api/v1/studies/{study_id}/results")
    if as_json:
        _show(document)
    else:
        click.echo(results_table(document["statistics"]))


@study_group.command("status")
@click.argument("study_id")
@_json_option
@_with_api
def study_status(study_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Show a study: status, runs finished of all, runs by status, its grid, timestamps."""
    study = _Api(api_url, api_key).call("GET", f"/api/v1/studies/{study_id}")
    _show_as(study, as_json, cli_tables.study_fields)


@study_group.command("list")
@_page_options("studies")
def list_studies(**options: Any) -> None:
    """List studies, newest first."""
    _show_page("/api/v1/studies", cli_tables.study_page, **options)


@study_group.command("cancel")
@click.argument("study_id")
@_with_api
def cancel_study(study_id: str, api_url: str | None, api_key: str | None) -> None:
    """Cancel a study and every run of it not yet ended."""
    _show(_Api(api_url, api_key).call("POST", f"/api/v1/studies/{study_id}/cancel"))


@study_group.command("delete")
@click.argument("study_id")
@_with_api
def delete_study(study_id: str, api_url: str | None, api_key: str | None) -> None:
    """Delete a study that ended or was cancelled, with all its runs."""
    _Api(api_url, api_key).request("DELETE", f"/api/v1/studies/{study_id}")
    click.echo(f"deleted study {study_id}")


@study_group.command("results")
@click.argument("study_id")
@click.option("--json", "as_json", is_flag=True, help="The API's JSON document.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="The API's CSV: a row per cell, policy, metric."
)
@_with_api
def study_results(
    study_id: str, as_json: bool, as_csv: bool, api_url: str | None, api_key: str | None
) -> None:
    """A table per cell, policies best first: wins, the mean rank metric with its confidence
    interval, and the paired difference to the best with its interval and p-values. Exit 1
    until every run of the study has ended."""
    if as_json and as_csv:
        raise click.UsageError("--json or --csv, not both")
    api = _Api(api_url, api_key)
    if as_csv:
        path = f"/api/v1/studies/{study_id}/results"
        click.echo(api.request("GET", path, params={"format": "csv"}).text, nl=False)
    else:
        _show_results(api, study_id, as_json)
