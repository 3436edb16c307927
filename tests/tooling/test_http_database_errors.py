"""Requests when the database cannot serve: 503 with ``Retry-After``, logged once, no secrets.

An unreachable server, a refused login and a missing database are 503 (the operator fixes
them, the client retries); a missing table or column is a 500 whose body says to apply
the migrations, without naming the table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import String
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DatabaseSessionFactory,
    DbMiddleware,
    DbRepo,
    IntPKMixin,
    VivekaDbBase,
    entity,
    table,
)
from viveka_db.integrations.fastapi import add_exception_handlers

CLOSED_PORT = 20999
PASSWORD = "s3cr3t-Passw0rd"


@entity
@table("tool_unavailable_gadgets")
class Gadget(VivekaDbBase, IntPKMixin):
    name: Mapped[str] = mapped_column(String(50))


class GadgetRepo(DbRepo[Gadget]):
    pass


gadgets = GadgetRepo()


@pytest.fixture(autouse=True)
async def _fresh() -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    yield
    await DatabaseSessionFactory.close_all()
    await asyncio.sleep(0.1)  # aiosqlite stops a failed connection's thread via the loop


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(DbMiddleware)
    add_exception_handlers(app, retry_after=7)

    @app.get("/gadgets/{gadget_id}")
    async def read(gadget_id: int) -> dict[str, str]:
        gadget = await gadgets.get_or_raise(gadget_id)
        return {"name": gadget.name}

    return app


async def _get_twice(url: str) -> list[httpx.Response]:
    DatabaseSessionFactory({"database": {"url": url}})
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return [await client.get("/gadgets/1") for _ in range(2)]


def _server_url(backend_url: str, **parts: object) -> str:
    return make_url(backend_url).set(**parts).render_as_string(hide_password=False)


def _broken_url(backend: str, backend_url: str, problem: str) -> str:
    if backend == "sqlite":
        if problem != "unreachable":
            pytest.skip("SQLite has no login and creates a missing database file")
        return "sqlite+aiosqlite:////nonexistent-dir-viveka/app.db"
    if problem == "unreachable":
        return _server_url(backend_url, port=CLOSED_PORT, password=PASSWORD)
    if problem == "login":
        return _server_url(backend_url, username="viveka_no_such_role", password=PASSWORD)
    return _server_url(backend_url, database="viveka_no_such_database")


@pytest.mark.parametrize(
    ("problem", "cause"),
    [
        ("unreachable", "cannot be reached"),
        ("login", "refused the login"),
        ("database", "database does not exist"),
    ],
)
async def test_503_with_retry_after_logged_once(
    backend: str,
    backend_url: str,
    problem: str,
    cause: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _broken_url(backend, backend_url, problem)
    answers = await _get_twice(url)
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "7"
        assert answer.json()["detail"].startswith("service temporarily unavailable")
        assert PASSWORD not in answer.text and "viveka_no_such" not in answer.text
    lines = [r.getMessage() for r in caplog.records if r.name == "viveka_db.http"]
    assert len(lines) == 1, lines  # two failed requests, one line
    assert cause in lines[0]
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


async def test_a_missing_table_is_a_500_that_names_the_fix(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await db.drop_all([Gadget])
    try:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/gadgets/1")
    finally:
        await db.create_all([Gadget])
    assert answer.status_code == 500
    body = answer.json()
    assert body["error"] == "SchemaError"
    assert "migrations" in body["detail"]
    assert "tool_unavailable_gadgets" not in answer.text  # the schema stays private
    logged = [r.getMessage() for r in caplog.records if r.name == "viveka_db.http"]
    assert any("tool_unavailable_gadgets" in line and "db upgrade" in line for line in logged)
