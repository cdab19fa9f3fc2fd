"""The `hms` commands' HTTP client of the API, the options every API command takes, and how a
document is printed (its table, or its JSON with --json).

Every command's module imports this one as `hms` starts: httpx, the settings (pydantic-settings)
and the live progress bar (rich) load when an `ApiClient` is made or follows a stream, so that
`hms --help` and `hms simulate` never load them (app/cli/main.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from app.cli.errors import error_message

if TYPE_CHECKING:
    import httpx


class ApiClient:
    """The API at `url` (default: HMS_API_URL) as `key` (default: HMS_API_KEY); an error answer
    or an unreachable API becomes a ClickException naming it."""

    def __init__(self, url: str | None, key: str | None) -> None:
        import httpx

        from app.settings import get_settings

        settings = get_settings()
        headers = {"X-API-Key": key or settings.api_key} if (key or settings.api_key) else {}
        self.client = httpx.Client(base_url=url or settings.api_url, headers=headers, timeout=30)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON document."""
        return self.request(method, path, **kwargs).json()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer; an error answer exits with its status and detail."""
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach the API at {self.client.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise click.ClickException(error_message(response))
        return response

    def follow(
        self,
        path: str,
        ended: Callable[[Mapping[str, Any]], bool],
        describe: Callable[[Mapping[str, Any]], str],
    ) -> dict[str, Any]:
        """Follow the event stream at `path` until a state has `ended`, with one progress bar
        on stderr (on a terminal); that state."""
        import httpx

        from app.cli.follow import LiveBar, follow

        try:
            with LiveBar(describe) as bar:
                return follow(self.client, path, ended, bar)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach the API at {self.client.base_url}: {exc}"
            ) from exc


API_OPTIONS = [
    click.option("--api", "api_url", help="API base URL (default: HMS_API_URL or localhost:8000)."),
    click.option("--key", "api_key", help="API key (default: HMS_API_KEY)."),
]


def with_api(command: Any) -> Any:
    for option in reversed(API_OPTIONS):
        command = option(command)
    return command


def show(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def show_as(document: Any, as_json: bool, table: Callable[[Any], str]) -> None:
    """The API's JSON document with --json, else its table."""
    if as_json:
        show(document)
    else:
        click.echo(table(document))


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON document instead of a table."
)


def page_options(what: str) -> Any:
    """The options of a listing: --status, --limit, --offset, --json, and the API's."""

    def decorate(command: Any) -> Any:
        for option in reversed(
            [
                click.option("--status", "status_filter", help=f"Only {what} in this status."),
                click.option("--limit", default=20, show_default=True),
                click.option("--offset", default=0, show_default=True),
                json_option,
            ]
        ):
            command = option(command)
        return with_api(command)

    return decorate


def show_page(
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
    show_as(ApiClient(api_url, api_key).call("GET", path, params=params), as_json, render)
