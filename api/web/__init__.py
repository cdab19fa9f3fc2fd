"""The dashboard: HTML pages beside the JSON API, in the same process. Like the API's routes, the
pages call the services with the viewer's tenant and hold no rule of their own; their live parts
follow the API's event streams (EventSource on /api/v1/.../events), authenticated by the session
cookie. Scripts and styles come from this package and from the installed plotly wheel: no CDN."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web import models, profiles, queues, runs, session, studies

#: plotly.min.js ships in the plotly wheel's package data.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data"


def install(app: FastAPI) -> None:
    for module in (session, runs, studies, models, profiles, queues):
        app.include_router(module.router)
    app.add_exception_handler(session.LoginRequired, session.login_redirect)  # type: ignore[arg-type]
    app.mount("/static/web", StaticFiles(directory=Path(__file__).parent / "static"), name="web")
    app.mount("/static/plotly", StaticFiles(directory=PLOTLY_JS), name="plotly")
