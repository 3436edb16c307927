"""``publish`` in a request handled by ``DbMiddleware``: the request's transaction carries
the event; a 5xx response or an exception rolls it back, listeners included."""

from __future__ import annotations

from decimal import Decimal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.core.test_middleware import client_for
from tests.outbox.events import OrderPlaced, outbox_rows
from viveka_db import DatabaseSessionFactory, DbMiddleware, on_event, publish
from viveka_db.outbox.listeners import remove_listener


async def test_publish_in_requests(db: DatabaseSessionFactory) -> None:
    heard: list[int] = []

    @on_event(OrderPlaced)
    def hear(event: OrderPlaced) -> None:
        heard.append(event.order_id)

    async def place(request: Request) -> Response:
        status = int(request.path_params["status"])
        publish(OrderPlaced(status, Decimal(1)), key=status)
        if request.query_params.get("raise"):
            raise RuntimeError("route fails after publishing")
        return PlainTextResponse("ok", status_code=status)

    app = Starlette(routes=[Route("/place/{status}", place)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    try:
        async with client_for(app) as client:
            for path in ("/place/201", "/place/503", "/place/200?raise=1", "/place/404"):
                await client.get(path)
    finally:
        remove_listener(OrderPlaced, hear)
    assert [row.aggregateid for row in await outbox_rows(db)] == ["201", "404"]
    assert heard == [201, 404]
