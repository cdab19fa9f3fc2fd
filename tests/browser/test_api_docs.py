"""The API's documentation pages in Chromium with every request off the API's own server
refused, as on a machine without internet: /docs (Swagger UI) lists the operations and /redoc
renders them, with nothing asked of a CDN."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

#: One operation of the API (GET /api/v1/runs/{run_id}/results), by what each page shows of it.
OPERATION_PATH = "/api/v1/runs/{run_id}/results"
OPERATION_SUMMARY = "Get Results"
#: The one outside request: ReDoc's side menu ends with "API docs by Redocly" and this logo, a
#: URL built into redoc.standalone.js; ReDoc drops the image when it does not load.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def offline_page(new_page, api) -> Iterator[tuple[Any, list[str]]]:
    """A page whose requests to anywhere but the API's server are aborted (and listed)."""
    page = new_page()
    own = urlsplit(api.url).netloc
    refused: list[str] = []

    def only_the_api(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.page.route("**/*", only_the_api)
    yield page, refused


def test_swagger_ui_shows_the_operations_offline(offline_page, api):
    page, refused = offline_page
    operations = sum(
        len(methods) for methods in httpx.get(f"{api.url}/openapi.json").json()["paths"].values()
    )
    page.page.goto("/docs")
    results = page.page.locator(f".opblock-summary-path[data-path='{OPERATION_PATH}']")
    results.wait_for(state="visible")
    assert page.page.locator(".opblock").count() == operations
    assert OPERATION_SUMMARY in page.page.locator(".opblock", has=results).inner_text()
    assert refused == []
    page.screenshot("api-docs-swagger", full_page=False)


def test_redoc_renders_the_operations_offline(offline_page, api):
    page, refused = offline_page
    page.expect_error("net::ERR_FAILED")  # the logo refused; any other refusal is listed below
    page.page.goto("/redoc")
    heading = page.page.locator("h2", has_text=OPERATION_SUMMARY).first
    heading.wait_for(state="visible")
    assert OPERATION_PATH in page.page.locator("body").inner_text()
    assert set(refused) <= {REDOC_LOGO}, refused
    page.screenshot("api-docs-redoc", full_page=False)
