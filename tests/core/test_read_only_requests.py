"""``DbMiddleware(app, read_only_methods=...)``: safe methods run read-only on the read engine."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.core.driver_probe import driver_calls, driver_in_transaction
from tests.core.helpers import committed_tags
from tests.core.models import Item, ItemRepo
from tests.sql import statements
from viveka_db import DatabaseSessionFactory, ReadOnlyTransactionError, current_session
from viveka_db.middleware.db_middleware import DbMiddleware

repo = ItemRepo()


def client_for(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def list_items(request: Request) -> Response:
    items = await repo.get_all()
    connection = await current_session().connection()
    raw = await connection.get_raw_connection()
    return JSONResponse(
        {
            "tags": sorted(str(i.tag) for i in items),
            "in_transaction": driver_in_transaction(raw.driver_connection),
        }
    )


raised: list[BaseException] = []


async def orm_write_in_get(request: Request) -> Response:
    try:
        await repo.insert_all([Item(tag="sneaky")])
    except Exception as exc:
        raised.append(exc)
        raise
    return JSONResponse({"written": True})


async def sql_write_in_get(request: Request) -> Response:
    try:
        await current_session().execute(text("INSERT INTO core_items (tag, n) VALUES ('raw', 0)"))
    except Exception as exc:
        raised.append(exc)
        raise
    return JSONResponse({"written": True})


async def create(request: Request) -> Response:
    await repo.insert_all([Item(tag=request.path_params["tag"])])
    return JSONResponse({"created": True})


def make_app() -> Starlette:
    app = Starlette(
        routes=[
            Route("/items", list_items, methods=["GET"]),
            Route("/orm-write", orm_write_in_get, methods=["GET"]),
            Route("/sql-write", sql_write_in_get, methods=["GET"]),
            Route("/items/{tag}", create, methods=["POST"]),
        ]
    )
    app.add_middleware(DbMiddleware, read_only_methods=("GET", "HEAD"))
    return app


async def test_get_reads_on_the_read_engine_without_a_transaction(
    db: DatabaseSessionFactory, backend: str
) -> None:
    await repo.insert_all([Item(tag="a"), Item(tag="b")])
    read_engine = db.read_engine
    assert read_engine is not db.engine
    async with client_for(make_app()) as client:
        with (
            statements(read_engine) as reads,
            statements(db.engine) as writes,
            driver_calls(read_engine) as read_calls,
        ):
            response = await client.get("/items")
            head = await client.head("/items")
    assert response.status_code == 200
    assert response.json() == {"tags": ["a", "b"], "in_transaction": False}
    assert head.status_code == 200
    assert len(reads) == 2  # GET and HEAD: one SELECT each, on the read engine
    assert all(s.lstrip().upper().startswith("SELECT") for s in reads), reads
    assert not any(word in s.upper() for s in reads for word in ("BEGIN", "COMMIT", "ROLLBACK")), (
        reads
    )
    assert writes == []  # the write engine was never touched
    if backend != "postgresql":  # asyncpg has no commit()/rollback() of its own to count
        assert read_calls == {}, read_calls  # neither COMMIT nor ROLLBACK reached the driver


async def test_orm_write_inside_a_get_is_refused_and_persists_nothing(
    db: DatabaseSessionFactory,
) -> None:
    raised.clear()
    async with client_for(make_app()) as client:
        with statements(db.engine) as writes:
            response = await client.get("/orm-write")
    assert response.status_code == 500
    assert len(raised) == 1 and isinstance(raised[0], ReadOnlyTransactionError), raised
    assert writes == []
    assert await committed_tags(db.engine) == []


async def test_sql_write_inside_a_get_is_refused_by_the_database(
    db: DatabaseSessionFactory,
) -> None:
    raised.clear()
    async with client_for(make_app()) as client:
        response = await client.get("/sql-write")
    assert response.status_code == 500
    assert len(raised) == 1 and isinstance(raised[0], DBAPIError), raised  # refused by the server
    assert await committed_tags(db.engine) == []


async def test_post_still_commits(db: DatabaseSessionFactory, backend: str) -> None:
    async with client_for(make_app()) as client:
        with driver_calls(db.engine) as write_calls, statements(db.read_engine) as reads:
            created = await client.post("/items/posted")
        listed = await client.get("/items")
    assert created.status_code == 200
    assert reads == []  # a POST runs on the write engine
    if backend != "postgresql":
        assert write_calls["commit"] == 1, write_calls
    assert await committed_tags(db.engine) == ["posted"]
    assert listed.json()["tags"] == ["posted"]


def test_read_only_methods_are_case_insensitive() -> None:
    middleware = DbMiddleware(make_app(), read_only_methods=["get", "Head"])
    assert middleware.read_only_methods == frozenset({"GET", "HEAD"})
