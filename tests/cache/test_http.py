"""In a request handled by ``DbMiddleware``, cache writes and evictions run after the
request's commit and before the response starts."""

from __future__ import annotations

from decimal import Decimal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.cache.models import CacheUser, UserRepo
from tests.sql import statements
from viveka_db import DatabaseSessionFactory, DbMiddleware
from viveka_db.cache.backend import CacheBackend


async def test_requests_fill_and_evict_the_cache_before_responding(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = UserRepo()
    await repo.insert_all([CacheUser(id=1, name="ada", balance=Decimal("1.00"))])

    async def read(request: Request) -> JSONResponse:
        user = await repo.get(int(request.path_params["id"]))
        return JSONResponse({"name": None if user is None else user.name})

    async def rename(request: Request) -> JSONResponse:
        await repo.rename(int(request.path_params["id"]), (await request.json())["name"])
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/u/{id}", read), Route("/u/{id}", rename, methods=["PUT"])])
    app.add_middleware(DbMiddleware, engine=db.engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/u/1")).json() == {"name": "ada"}
        assert cache.stats().writes == 1  # written before the response was sent
        with statements(db.engine) as sent:
            assert (await client.get("/u/1")).json() == {"name": "ada"}
        assert sent == []
        assert (await client.put("/u/1", json={"name": "grace"})).status_code == 200
        assert cache.stats().evictions == 1
        assert (await client.get("/u/1")).json() == {"name": "grace"}
