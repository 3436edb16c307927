"""``DbMiddleware(tenant_resolver=..., actor_resolver=...)``: each request in its tenant."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.requests import Request

from tests.tenancy.models import Note, NoteRepo
from tests.tenancy.seed import raw_rows
from viveka_db import NoTenantError, current_actor, current_tenant
from viveka_db.middleware.db_middleware import DbMiddleware

pytestmark = pytest.mark.usefixtures("db")

Scope = MutableMapping[str, Any]
repo = NoteRepo()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode())
    return None


def tenant_from_header(scope: Scope) -> str | None:
    # a stand-in for a verified JWT claim (see the how-to for the real thing)
    return _header(scope, b"x-tenant")


async def actor_from_header(scope: Scope) -> str | None:
    await asyncio.sleep(0)  # async resolvers are awaited
    return _header(scope, b"x-user")


def make_app(**resolvers: Any) -> FastAPI:
    app = FastAPI()
    seen_later: list[tuple[Any, Any]] = []

    @app.post("/notes")
    async def create(request: Request, tasks: BackgroundTasks) -> dict[str, Any]:
        note = await repo.save(Note(title=request.query_params["title"]))
        tasks.add_task(lambda: seen_later.append((current_tenant(), current_actor())))
        return {"tenant": note.tenant_id, "by": note.created_by}

    @app.get("/notes")
    async def titles() -> list[str]:
        return [n.title for n in await repo.all()]

    @app.exception_handler(NoTenantError)
    async def no_tenant(request: Request, exc: NoTenantError) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": "no tenant"}, status_code=403)

    app.add_middleware(DbMiddleware, **resolvers)
    app.state.seen_later = seen_later
    return app


def client_for(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_each_request_runs_in_its_resolved_tenant_and_actor() -> None:
    app = make_app(tenant_resolver=tenant_from_header, actor_resolver=actor_from_header)
    async with client_for(app) as client:
        made = await asyncio.gather(
            *(
                client.post(
                    "/notes",
                    params={"title": f"{tid}-{i}"},
                    headers={"x-tenant": tid, "x-user": f"user-{tid}"},
                )
                for i in range(5)
                for tid in ("a", "b")
            )
        )
        assert all(r.status_code == 200 for r in made)
        assert {(r.json()["tenant"], r.json()["by"]) for r in made} == {
            ("a", "user-a"),
            ("b", "user-b"),
        }
        listed = await client.get("/notes", headers={"x-tenant": "a"})
        assert sorted(listed.json()) == [f"a-{i}" for i in range(5)]
        refused = await client.get("/notes")  # the resolver found no tenant
        assert refused.status_code == 403
    assert set(app.state.seen_later) == {("a", "user-a"), ("b", "user-b")}  # background tasks
    rows = await raw_rows("SELECT tenant_id, count(*) FROM ten_notes GROUP BY tenant_id")
    assert sorted(tuple(r) for r in rows) == [("a", 5), ("b", 5)]
    assert current_tenant() is None  # nothing leaks out of the requests


def test_a_resolver_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="tenant_resolver must be a callable"):
        DbMiddleware(FastAPI(), tenant_resolver="tenant")  # type: ignore[arg-type]


async def test_tenant_errors_are_403s_that_name_no_tenant() -> None:
    from viveka_db.integrations.fastapi import add_exception_handlers

    app = FastAPI()

    @app.get("/notes")
    async def titles() -> list[str]:
        return [n.title for n in await repo.all()]

    @app.post("/notes/foreign")
    async def foreign() -> None:
        await repo.save(Note(title="x", tenant_id="tenant-b-secret"))

    add_exception_handlers(app)
    app.add_middleware(DbMiddleware, tenant_resolver=tenant_from_header)
    async with client_for(app) as client:
        unbound = await client.get("/notes")  # the resolver found no tenant
        mismatch = await client.post("/notes/foreign", headers={"x-tenant": "a"})
    assert (unbound.status_code, unbound.json()["error"]) == (403, "NoTenantError")
    assert (mismatch.status_code, mismatch.json()["error"]) == (403, "TenantMismatchError")
    assert "tenant-b-secret" not in mismatch.text
    assert await raw_rows("SELECT title FROM ten_notes") == []  # nothing half-written
