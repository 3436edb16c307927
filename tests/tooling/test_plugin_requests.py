"""The ``db_session`` fixture covers what a test does through the application.

A user project's pytest run (pytester, in a subprocess) POSTs through a FastAPI app wrapped
in ``DbMiddleware`` and through the request dependency, calls ``REQUIRES_NEW``,
``NESTED`` and ``run_concurrently`` code, and sends concurrent requests; the next test
sees an empty table, and so does the database afterwards.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytest_plugins = ["pytester"]

USER_TESTS = """
import asyncio

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DbMiddleware, DbRepo, Propagation, VivekaDbBase, entity, run_concurrently, table, transactional,
)
from viveka_db.integrations.fastapi import SessionDep


@entity
@table("tool_rollback_notes")
class Note(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(40))


class NoteService:
    def __init__(self):
        self.repo = DbRepo(Note)

    @transactional
    async def add(self, body):
        await self.repo.save(Note(body=body))

    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def add_independently(self, body):
        await self.repo.save(Note(body=body))

    @transactional(propagation=Propagation.NESTED)
    async def add_nested_then_fail(self, body):
        await self.repo.save(Note(body=body))
        raise ValueError("undo the savepoint")

    @transactional(read_only=True)
    async def bodies(self):
        return sorted(n.body for n in await self.repo.get_all(limit=1000))


service = NoteService()
app = FastAPI()
app.add_middleware(DbMiddleware)


@app.post("/notes/{body}")
async def post_note(body: str):
    await service.add(body)
    await service.add_independently(body + "-log")
    try:
        await service.add_nested_then_fail(body + "-nested")
    except ValueError:
        pass
    if body.startswith("fail"):
        raise HTTPException(500, "failed after writing")
    return {"bodies": await service.bodies()}


@app.post("/batch/{count}")
async def post_batch(count: int):
    # tasks started inside the request's turn take turns among themselves
    await run_concurrently(*(service.add_independently(f"b{i}") for i in range(count)))
    return {"count": await service.repo.count()}


@app.post("/dep/{body}")
async def post_with_dependency(body: str, session: SessionDep):
    session.add(Note(body=body))
    await session.flush()
    if body.startswith("fail"):
        raise HTTPException(409, "conflict after writing")
    return {"ok": True}


plain = FastAPI()  # no middleware: the request dependency owns the unit of work
plain.post("/dep/{body}")(post_with_dependency)


def client(application):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t")


@pytest.mark.asyncio
async def test_1_requests_write_inside_the_test_transaction(db_session):
    async with client(app) as http:
        response = await http.post("/notes/a")
        assert response.status_code == 200, response.text
        assert response.json()["bodies"] == ["a", "a-log"]
        failed = await http.post("/notes/fail")
        assert failed.status_code == 500
    # the failed request rolled back its own savepoint only; the REQUIRES_NEW savepoint it
    # released is nested in it (one connection), so its write went too
    assert await service.bodies() == ["a", "a-log"]
    assert await service.repo.count() == 2


@pytest.mark.asyncio
async def test_2_starts_empty(db_session):
    assert await service.repo.count() == 0


@pytest.mark.asyncio
async def test_3_requires_new_and_run_concurrently_in_the_test(db_session):
    await service.add_independently("own")
    await run_concurrently(*(service.add_independently(f"c{i}") for i in range(5)))
    assert await service.repo.count() == 6


@pytest.mark.asyncio
async def test_4_starts_empty_again(db_session):
    assert await service.bodies() == []


@pytest.mark.asyncio
async def test_5_concurrent_requests_take_turns(db_session):
    async with client(app) as http:
        responses = await asyncio.gather(*(http.post(f"/notes/n{i}") for i in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert await service.repo.count() == 16
    async with client(app) as http:
        batch = await asyncio.wait_for(http.post("/batch/4"), timeout=30)
    assert batch.json() == {"count": 20}


@pytest.mark.asyncio
async def test_6_the_dependency_without_middleware(db_session):
    async with client(plain) as http:
        assert (await http.post("/dep/kept")).status_code == 200
        assert (await http.post("/dep/fail")).status_code == 409
    assert await service.bodies() == ["kept"]


@pytest.mark.asyncio
async def test_7_starts_empty_at_last(db_session):
    assert await service.repo.count() == 0
"""


async def _count(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(text("SELECT COUNT(*) FROM tool_rollback_notes"))).scalar_one()
            )
    finally:
        await engine.dispose()


def test_requests_through_the_app_are_rolled_back(
    backend: str, backend_url: str, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'requests.db'}" if backend == "sqlite" else backend_url
    pytester.makepyfile(test_user_app=USER_TESTS)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", f"--viveka-db-url={url}", timeout=180
    )
    result.assert_outcomes(passed=7)
    assert asyncio.run(_count(url)) == 0  # the table exists and nothing was left behind
