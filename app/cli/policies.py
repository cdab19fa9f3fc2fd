"""`hms policies`: what a run can compare (`GET /api/v1/policies`) and the kernel performance
models the runtime schedulers may decide with (`GET /api/v1/policies/perf-models`)."""

from __future__ import annotations

import click

from app.cli import tables
from app.cli.client import ApiClient, json_option, show_as, with_api


@click.command()
@click.option(
    "--models",
    "only_models",
    is_flag=True,
    help="Only the kernel performance models a run may name in `perf_model`.",
)
@json_option
@with_api
def policies(only_models: bool, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """List the policies a run can compare: what each does, what it decides on under
    `knowledge: estimated` (under `clairvoyant` every policy decides on the truth) and its paper;
    then the kernel performance models `dm`, `dmda`, `dmdas` and `heteroprio` may decide with
    (`perf_model`). With --json: the policies' documents, or with --models the models'."""
    client = ApiClient(api_url, api_key)
    models = client.call("GET", "/api/v1/policies/perf-models")
    if only_models:
        show_as(models, as_json, tables.kernel_model_list)
        return
    documents = client.call("GET", "/api/v1/policies")
    if as_json:
        show_as(documents, as_json, tables.policy_list)
    else:
        click.echo(tables.policy_list(documents))
        click.echo(f"\nKernel performance models (perf_model):\n{tables.kernel_model_list(models)}")
