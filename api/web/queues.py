"""The Queues page: each queue's depth by priority, the workers, and a link to Flower."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web import broker
from api.web.session import Viewer
from api.web.templating import render
from app.settings import get_settings

router = APIRouter(include_in_schema=False)


@router.get("/queues")
def queues_page(request: Request, tenant: Viewer) -> Response:
    try:
        state: broker.BrokerState | None = broker.broker_state()
    except redis.RedisError:
        state = None
    context = {
        "tenant": tenant,
        "state": state,
        "workers": broker.workers() if state is not None else None,
        "priorities": list(range(9, -1, -1)),
        "flower": f"http://{request.url.hostname}:{get_settings().flower_port}",
    }
    return render(request, "queues.html", context)
