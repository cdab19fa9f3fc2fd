"""`hms keys create | list | revoke`: API keys, one per tenant (needs an admin key)."""

from __future__ import annotations

import click

from app.cli import tables
from app.cli.client import ApiClient, with_api


@click.group("keys")
def keys_group() -> None:
    """API keys, one per tenant (needs an admin key)."""


@keys_group.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see every tenant's work, retrain, manage keys.")
@with_api
def create_key(name: str, admin: bool, api_url: str | None, api_key: str | None) -> None:
    """Create a key for tenant NAME and print it: it is shown this once."""
    created = ApiClient(api_url, api_key).call(
        "POST", "/api/v1/keys", json={"name": name, "admin": admin}
    )
    click.echo(created["key"])
    role = "admin" if created["admin"] else "tenant"
    click.echo(f"{role} key for {name!r}: store it now, it cannot be shown again", err=True)


@keys_group.command("list")
@with_api
def list_keys(api_url: str | None, api_key: str | None) -> None:
    """Every key's name, role, source and dates (never the keys themselves)."""
    click.echo(tables.key_list(ApiClient(api_url, api_key).call("GET", "/api/v1/keys")))


@keys_group.command("revoke")
@click.argument("name")
@with_api
def revoke_key(name: str, api_url: str | None, api_key: str | None) -> None:
    """Revoke NAME's active key: refused from its next request on (its work stays)."""
    ApiClient(api_url, api_key).request("POST", f"/api/v1/keys/{name}/revoke")
    click.echo(f"revoked the key of {name!r}")
