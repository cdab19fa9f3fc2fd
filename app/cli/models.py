"""`hms models | retrain`: the performance model versions, and retraining on demand."""

from __future__ import annotations

import time

import click

from app.cli import tables
from app.cli.client import ApiClient, json_option, show_as, with_api

#: The retrain job statuses after which nothing changes.
JOB_ENDED = frozenset({"succeeded", "skipped", "failed"})
#: Seconds between two polls of a retrain job by `hms retrain --wait` (jobs have no event stream).
JOB_POLL_S = 0.5


@click.command()
@json_option
@with_api
def models(as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """List the performance model versions `learned` uses, newest first, the active one marked."""
    versions = ApiClient(api_url, api_key).call("GET", "/api/v1/models")
    show_as(versions, as_json, tables.model_versions)


@click.command()
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the job (a progress bar on a terminal) until it ends, then print its outcome.",
)
@json_option
@with_api
def retrain(wait: bool, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Retrain the performance model now (admin keys only) and print the job's id (--json: the
    job). With --wait, follow it, then print its outcome; exit 1 if it failed."""
    from app.cli.follow import LiveBar  # rich: loaded by the commands that draw it (client.py)

    api = ApiClient(api_url, api_key)
    job = api.call("POST", "/api/v1/models/retrain")
    if not wait:
        show_as(job, as_json, lambda j: str(j["id"]))
        return
    with LiveBar(lambda j: f"retrain {str(j['id'])[:8]} {j['status']}") as bar:
        bar(job)
        while job["status"] not in JOB_ENDED:
            time.sleep(JOB_POLL_S)
            job = api.call("GET", f"/api/v1/models/retrains/{job['id']}")
            bar(job)
    show_as(job, as_json, tables.retrain_job)
    if job["status"] == "failed":
        raise click.ClickException(f"retrain {job['id']} failed: {job['message']}")


COMMANDS = (models, retrain)
