"""`hms policies`: what a run can compare (`GET /api/v1/policies`)."""

from __future__ import annotations

import click

from app.cli import tables
from app.cli.client import ApiClient, json_option, show_as, with_api


@click.command()
@json_option
@with_api
def policies(as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """List the policies a run can compare: what each does, and what it decides on under
    `knowledge: estimated` (under `clairvoyant` every policy decides on the truth)."""
    documents = ApiClient(api_url, api_key).call("GET", "/api/v1/policies")
    show_as(documents, as_json, tables.policy_list)
