"""``viveka_db.integrations.fastapi``: lifespan, and a session dependency that never doubles."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, HTTPException
from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DatabaseSessionFactory,
    DbMiddleware,
    DbRepo,
    VivekaDbBase,
    current_session,
    entity,
    table,
    transactional,
)
from viveka_db.integrations.fastapi import SessionDep, viveka_lifespan


@entity
@table("tool_api_accounts")
class Account(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)


class AccountService:
    repo = DbRepo(Account)

    @transactional
    async def session_in_use(self) -> AsyncSession:
        return current_session()

    @transactional
    async def add_then_fail(self, email: str) -> None:
        await self.repo.insert_all([Account(email=email)])
        raise ValueError("inner failure")


def make_app(*, middleware: bool) -> FastAPI:
    app = FastAPI()
    if middleware:
        app.add_middleware(DbMiddleware)
    service = AccountService()

    @app.post("/accounts")
    async def create(email: str, session: SessionDep, fail: bool = False) -> dict[str, Any]:
        session.add(Account(email=email))  # flushed by the commit, after the endpoint returns
        if fail:
            raise HTTPException(status_code=409, detail="refused")
        return {"email": email}

    @app.post("/swallowed")
    async def swallowed(session: SessionDep) -> dict[str, str]:
        with contextlib.suppress(ValueError):  # the transaction is rollback-only now
            await service.add_then_fail("swallowed@x.io")
        return {"status": "pretending all is well"}

    @app.get("/sessions")
    async def sessions(session: SessionDep) -> dict[str, bool]:
        inner = await service.session_in_use()
        return {"current": session is current_session(), "transactional": inner is session}

    return app


@pytest.fixture
async def count_sessions(db: DatabaseSessionFactory, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    made: list[int] = []
    original = db.new_session

    def counting(*, read_only: bool = False) -> AsyncSession:
        made.append(1)
        return original(read_only=read_only)

    monkeypatch.setattr(db, "new_session", counting)
    return made


async def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def _emails(db: DatabaseSessionFactory) -> list[str]:
    async with db.new_session() as session:
        return list((await session.scalars(select(Account.email).order_by(Account.id))).all())


@pytest.mark.parametrize("middleware", [False, True], ids=["dependency", "middleware"])
async def test_one_session_per_request(
    db: DatabaseSessionFactory, count_sessions: list[int], middleware: bool
) -> None:
    async with await _client(make_app(middleware=middleware)) as client:
        response = await client.get("/sessions")
    assert response.json() == {"current": True, "transactional": True}
    assert len(count_sessions) == 1


@pytest.mark.parametrize("middleware", [False, True], ids=["dependency", "middleware"])
async def test_commits_before_the_response(db: DatabaseSessionFactory, middleware: bool) -> None:
    async with await _client(make_app(middleware=middleware)) as client:
        ok = await client.post("/accounts", params={"email": "a@x.io"})
        assert ok.status_code == 200
        assert await _emails(db) == ["a@x.io"]
        # the duplicate fails at flush time, inside the commit: the client must not see 200
        duplicate = await client.post("/accounts", params={"email": "a@x.io"})
        assert duplicate.status_code == 500
        if not middleware:  # DbMiddleware sees a 409 response, not the exception, and commits
            refused = await client.post("/accounts", params={"email": "b@x.io", "fail": "true"})
            assert refused.status_code == 409
    assert await _emails(db) == ["a@x.io"]


async def test_lifespan_initialises_and_disposes(tmp_path: Path) -> None:
    await DatabaseSessionFactory.close_all()
    config = {"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"}}
    app = FastAPI(lifespan=viveka_lifespan(config, create_tables=True))
    app.add_middleware(DbMiddleware)

    @app.get("/count")
    async def count(session: SessionDep) -> int:
        return int(await session.scalar(select(func.count()).select_from(Account)) or 0)

    async with LifespanManager(app) as manager:
        assert DatabaseSessionFactory.is_initialised()
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/count")).json() == 0
    assert not DatabaseSessionFactory.is_initialised()


@pytest.mark.parametrize("middleware", [False, True], ids=["dependency", "middleware"])
async def test_a_swallowed_inner_failure_still_rolls_back(
    db: DatabaseSessionFactory, middleware: bool
) -> None:
    async with await _client(make_app(middleware=middleware)) as client:
        response = await client.post("/swallowed")
    assert response.status_code == 500
    assert await _emails(db) == []
