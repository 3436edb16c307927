"""``health_endpoint()``: an ASGI app answering ``check_health()`` for load balancers.

Mount it at ``/health`` (``app.mount("/health", health_endpoint())`` in Starlette/FastAPI,
or route to it from any ASGI server). It answers 200 while the service can work (``up`` or
``degraded``) and 503 when it cannot, with the report as JSON and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import orjson

from viveka_db.health.checks import check_health
from viveka_db.middleware.types import ASGIApp, Receive, Scope, Send

__all__ = ["health_endpoint"]


def health_endpoint(*, timeout: float = 2.0, require_cache: bool = False) -> ASGIApp:
    """An ASGI app reporting :func:`~viveka_db.check_health` (200 healthy, 503 otherwise).

    ``timeout`` bounds each check; ``require_cache=True`` answers 503 when the cache is
    down too (by default a cache outage only makes the report ``degraded``: the cache
    fails open, and taking every instance out of a load balancer for it would turn a
    slower service into no service).
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # websocket: closed without accepting; lifespan: nothing to start
        report = await check_health(timeout=timeout, require_cache=require_cache)
        body = orjson.dumps(report.as_dict())
        await send(
            {
                "type": "http.response.start",
                "status": 200 if report.healthy else 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body}
        )

    return app
