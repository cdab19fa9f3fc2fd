"""Abuse limits: the size of a request body, and submissions per API key per minute."""

from __future__ import annotations

import hashlib
import logging
import time
from functools import lru_cache

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import HmsError
from app.settings import get_settings

log = logging.getLogger(__name__)


class RateLimited(HmsError):
    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(f"more than {limit} submissions a minute with this API key")
        self.retry_after_s = retry_after_s


class BodySizeLimit:
    """Refuses (413) a request whose body exceeds `max_bytes`: at once when Content-Length says
    so; a body without Content-Length (chunked) is read up to the limit first, then handed on."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send)
            else:  # the server enforces the declared length
                await self.app(scope, receive, send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = f'{{"detail":"the request body exceeds {self.max_bytes} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@lru_cache(maxsize=2)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 1)
    )


def check_submission_rate(api_key: str) -> None:
    """Count a submission in the key's current minute (in Redis, shared by every API process);
    raise RateLimited past `submissions_per_minute`."""
    settings = get_settings()
    now = time.time()
    window = int(now // 60)
    key_id = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    counter = f"hms:submissions:{key_id}:{window}"
    try:
        pipeline = _client(settings.require_redis_url()).pipeline()
        pipeline.incr(counter)
        pipeline.expire(counter, 120)
        count = int(pipeline.execute()[0])
    except redis.RedisError:
        # Fail open: with the broker down a submission is only recorded (and answered 503);
        # refusing it here would lose it.
        log.warning("rate limit not checked: the broker is unreachable", exc_info=True)
        return
    if count > settings.submissions_per_minute:
        raise RateLimited(settings.submissions_per_minute, max(1, 60 - int(now % 60)))
