"""Who is looking at the dashboard: the login form, the session cookie, and the checks every page
and form makes.

The cookie holds the API key itself (HttpOnly, so no script can read it; SameSite=Strict, so no
other site's page can make the browser send it). api/deps.py accepts the same cookie on every
/api/v1 endpoint, so the pages' own fetches and EventSource streams authenticate with it. Forms
are protected against cross-site posts by SameSite=Strict and by checking the Origin header.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from api.deps import SESSION_COOKIE
from api.web.templating import render
from app.errors import UnknownKey
from app.services import keys
from app.tenancy import Tenant

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """No valid key in the cookie: the page answers with a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def page_tenant(request: Request) -> Tenant:
    """The tenant of the session cookie's key, or LoginRequired (a missing, unknown or revoked
    key: every request resolves the key again, as the API does)."""
    key = request.cookies.get(SESSION_COOKIE)
    if not key:
        raise LoginRequired(_here(request))
    try:
        return keys.resolve(key)
    except UnknownKey as exc:
        raise LoginRequired(_here(request)) from exc


def same_origin(request: Request) -> None:
    """Refuse a form post another site's page sent. Browsers send Origin on every cross-origin
    POST; a request without one (curl, a test client) cannot carry a victim's cookie anyway."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin != own:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="cross-origin form post refused")


Viewer = Annotated[Tenant, Depends(page_tenant)]
SameOrigin = Depends(same_origin)


def login_redirect(_: Request, exc: LoginRequired) -> Response:
    response = RedirectResponse(
        f"/login?next={quote(exc.next_path)}", status_code=status.HTTP_303_SEE_OTHER
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _local(next), "error": None})


@router.post("/login", dependencies=[SameOrigin])
def login(
    request: Request, key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    key = key.strip()
    if not key:
        return _login_failed(request, next, "enter an API key")
    try:
        keys.resolve(key)
    except UnknownKey as exc:
        return _login_failed(request, next, str(exc))
    response = RedirectResponse(_local(next), status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", dependencies=[SameOrigin])
def logout() -> Response:
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _login_failed(request: Request, next_path: str, error: str) -> Response:
    return render(request, "login.html", {"next": _local(next_path), "error": error})


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _local(path: str) -> str:
    """Only a path on this site may follow a login (no open redirect to another host)."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else "/"
