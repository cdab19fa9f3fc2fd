"""`hms study submit | status | list | cancel | delete | results`: studies through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from app.cli import tables
from app.cli.client import ApiClient, json_option, page_options, show, show_as, show_page, with_api
from app.cli.runs import inline_files
from app.cli.simulate import load_spec


@click.group("study")
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
@with_api
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
    api = ApiClient(api_url, api_key)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    study = api.call("POST", "/api/v1/studies", json=_study_document(spec_file), headers=headers)
    if as_json and not wait:
        show(study)
        return
    if not as_json:
        click.echo(study["id"])
    if wait:
        _wait_then_show_results(api, study, as_json)


def _wait_then_show_results(api: ApiClient, study: dict[str, Any], as_json: bool) -> None:
    api.follow(
        f"/api/v1/studies/{study['id']}/events",
        lambda state: state["status"] in tables.STUDY_ENDED,
        tables.progress_text,
    )
    study = api.call("GET", f"/api/v1/studies/{study['id']}")
    if study["status"] == "cancelled":
        if as_json:
            show(study)
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
            inline_files(base)
    return document


def _show_results(api: ApiClient, study_id: str, as_json: bool) -> None:
    document = api.call("GET", f"/api/v1/studies/{study_id}/results")
    if as_json:
        show(document)
    else:
        click.echo(tables.results_table(document["statistics"]))


@study_group.command("status")
@click.argument("study_id")
@json_option
@with_api
def study_status(study_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Show a study: status, runs finished of all, runs by status, its grid, timestamps."""
    study = ApiClient(api_url, api_key).call("GET", f"/api/v1/studies/{study_id}")
    show_as(study, as_json, tables.study_fields)


@study_group.command("list")
@page_options("studies")
def list_studies(**options: Any) -> None:
    """List studies, newest first."""
    show_page("/api/v1/studies", tables.study_page, **options)


@study_group.command("cancel")
@click.argument("study_id")
@json_option
@with_api
def cancel_study(study_id: str, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Cancel a study and every run of it not yet ended; show it as `hms study status` does."""
    study = ApiClient(api_url, api_key).call("POST", f"/api/v1/studies/{study_id}/cancel")
    show_as(study, as_json, tables.study_fields)


@study_group.command("delete")
@click.argument("study_id")
@with_api
def delete_study(study_id: str, api_url: str | None, api_key: str | None) -> None:
    """Delete a study that ended or was cancelled, with all its runs (removed in the
    background: the study is gone from lists at once)."""
    answer = ApiClient(api_url, api_key).request("DELETE", f"/api/v1/studies/{study_id}").json()
    click.echo(f"deleted study {study_id}: {answer['detail']}")


@study_group.command("results")
@click.argument("study_id")
@click.option("--json", "as_json", is_flag=True, help="The API's JSON document.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="The API's CSV: a row per cell, policy, metric."
)
@with_api
def study_results(
    study_id: str, as_json: bool, as_csv: bool, api_url: str | None, api_key: str | None
) -> None:
    """A table per cell, policies best first: wins, the mean rank metric with its confidence
    interval, and the paired difference to the best with its interval and p-values. Exit 1
    until every run of the study has ended."""
    if as_json and as_csv:
        raise click.UsageError("--json or --csv, not both")
    api = ApiClient(api_url, api_key)
    if as_csv:
        path = f"/api/v1/studies/{study_id}/results"
        click.echo(api.request("GET", path, params={"format": "csv"}).text, nl=False)
    else:
        _show_results(api, study_id, as_json)
