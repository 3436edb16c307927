"""``add_exception_handlers``, ``PageParams``/``SliceParams`` and ``Page[S]``/``Slice[S]``."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy import String, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    ConstraintViolationError,
    DatabaseSessionFactory,
    DbMiddleware,
    DbRepo,
    DuplicateKeyError,
    EntityNotFoundError,
    IntPKMixin,
    VivekaDbBase,
    entity,
    table,
)
from viveka_db.integrations.fastapi import (
    Page,
    PageParams,
    Slice,
    SliceParams,
    add_exception_handlers,
)

SECRET_VALUE = "alice@example.com"


@entity
@table("tool_http_members")
class Member(VivekaDbBase, IntPKMixin):
    email: Mapped[str] = mapped_column(String(100), unique=True)


class MemberRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str


class MemberRepo(DbRepo[Member]):
    pass


members = MemberRepo()


def make_app(*, middleware: bool = True) -> FastAPI:
    app = FastAPI()
    if middleware:
        app.add_middleware(DbMiddleware)
    add_exception_handlers(app, retry_after=7)

    @app.get("/members/{member_id}")
    async def read(member_id: int) -> MemberRead:
        return MemberRead.model_validate(await members.get_or_raise(member_id))

    @app.post("/members")
    async def create(email: str) -> MemberRead:
        return MemberRead.model_validate(await members.save(Member(email=email)))

    @app.get("/members", response_model=Page[MemberRead])
    async def page(params: Annotated[PageParams, Depends()]) -> Page[MemberRead]:
        return Page[MemberRead].of(await members.get_page(**params.kwargs()))

    @app.get("/feed", response_model=Slice[MemberRead])
    async def feed(params: Annotated[SliceParams, Depends()]) -> Slice[MemberRead]:
        return Slice[MemberRead].of(await members.get_slice(**params.kwargs()))

    @app.get("/plain-page", response_model=Page[MemberRead])
    async def plain_page(params: Annotated[PageParams, Depends()]) -> Any:
        return await members.get_page(**params.kwargs())  # the repository's own Page

    @app.get("/plain-slice", response_model=Slice[MemberRead])
    async def plain_slice(params: Annotated[SliceParams, Depends()]) -> Any:
        return await members.get_slice(**params.kwargs())

    @app.get("/raise/{kind}")
    async def raise_(kind: str) -> None:
        errors: dict[str, Exception] = {
            "constraint": DuplicateKeyError(
                f"duplicate key value {SECRET_VALUE} violates uq_members_email",
                constraint="uq_members_email",
                columns=("email",),
                table="members",
            ),
            "pool": PoolTimeoutError("QueuePool limit of size 1 overflow 0 reached"),
            "refused": ConnectionRefusedError(111, "Connect call failed"),
            "gone": OperationalError(
                "SELECT 1", {}, Exception("(2006, 'MySQL server has gone away')")
            ),
            "syntax": OperationalError("SELEC 1", {}, Exception("near 'SELEC': syntax error")),
        }
        raise errors[kind]

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_missing_entity_is_404(db: DatabaseSessionFactory) -> None:
    async with client_for(make_app()) as client:
        created = await client.post("/members", params={"email": "a@x.io"})
        assert created.status_code == 200
        found = await client.get(f"/members/{created.json()['id']}")
        missing = await client.get("/members/999999")
    assert found.json()["email"] == "a@x.io"
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": "Member with id 999999 does not exist",
        "error": "EntityNotFoundError",
        "entity": "Member",
    }


async def test_get_or_raise(db: DatabaseSessionFactory) -> None:
    saved = await members.save(Member(email="b@x.io"))
    assert (await members.get_or_raise(saved.id)).email == "b@x.io"
    with pytest.raises(EntityNotFoundError) as info:
        await members.get_or_raise(saved.id + 1000)
    assert isinstance(info.value, LookupError)
    assert info.value.entity is Member and info.value.ident == saved.id + 1000


async def test_constraint_violation_is_409_without_the_values() -> None:
    async with client_for(make_app(middleware=False)) as client:
        response = await client.get("/raise/constraint")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "a row with the same unique value already exists",
        "error": "DuplicateKeyError",
        "constraint": "uq_members_email",
        "columns": ["email"],
    }
    assert SECRET_VALUE not in response.text


async def test_duplicate_key_from_the_database_is_409(db: DatabaseSessionFactory) -> None:
    async with client_for(make_app()) as client:
        assert (await client.post("/members", params={"email": SECRET_VALUE})).status_code == 200
        duplicate = await client.post("/members", params={"email": SECRET_VALUE})
    assert duplicate.status_code == 409
    body = duplicate.json()
    assert body["error"] == "DuplicateKeyError" and "email" in body["columns"]
    assert SECRET_VALUE not in duplicate.text
    assert await members.count() == 1


@pytest.mark.parametrize("kind", ["pool", "refused", "gone"])
async def test_database_unavailable_is_503_with_retry_after(kind: str) -> None:
    async with client_for(make_app(middleware=False)) as client:
        response = await client.get(f"/raise/{kind}")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["detail"].startswith("service temporarily unavailable")


async def test_other_driver_errors_stay_500() -> None:
    async with client_for(make_app(middleware=False)) as client:
        response = await client.get("/raise/syntax")
    assert response.status_code == 500
    assert "syntax" not in response.text


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u@127.0.0.1:1/none",
        "mysql+aiomysql://u@127.0.0.1:1/none",
    ],
    ids=["postgresql", "mariadb"],
)
async def test_unreachable_database_is_503(url: str) -> None:
    """A real connection attempt to a closed port, per driver (they raise different errors).

    Not SQLite: a failed aiosqlite connect leaves a worker thread that may outlive the loop.
    """
    await DatabaseSessionFactory.close_all()
    DatabaseSessionFactory({"database": {"url": url}})
    try:
        async with client_for(make_app()) as client:
            response = await client.get("/members/1")
    finally:
        await DatabaseSessionFactory.close_all()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


async def test_exhausted_pool_is_503(backend: str, backend_url: str) -> None:
    await DatabaseSessionFactory.close_all()
    factory = DatabaseSessionFactory(
        {
            "database": {
                "url": backend_url,
                "pool_size": "1",
                "max_overflow": "0",
                "pool_timeout": "0.2",
            }
        }
    )
    try:
        async with factory.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            async with client_for(make_app()) as client:
                response = await asyncio.wait_for(client.get("/members/1"), 10)
        assert response.status_code == 503
        assert "busy" in response.json()["detail"]
    finally:
        await DatabaseSessionFactory.close_all()


async def test_pagination_errors_are_422(db: DatabaseSessionFactory) -> None:
    async with client_for(make_app()) as client:
        unknown = await client.get("/members", params={"sort": "nosuchfield"})
        cursor = await client.get("/feed", params={"after": "garbage"})
        too_big = await client.get("/members", params={"size": "1000"})
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "UnknownFieldError"
    assert "email" in unknown.json()["detail"]  # lists the valid fields
    assert cursor.status_code == 422
    assert cursor.json()["error"] == "InvalidCursorError"
    assert too_big.status_code == 422  # FastAPI's own validation: le=100


async def test_page_and_slice_responses(db: DatabaseSessionFactory) -> None:
    await members.insert_all([Member(email=f"{i}@x.io") for i in range(5)])
    async with client_for(make_app()) as client:
        page = (
            await client.get("/members", params={"page": 2, "size": 2, "sort": "-email"})
        ).json()
        first = (await client.get("/feed", params={"size": 3, "sort": "email"})).json()
        rest = (
            await client.get(
                "/feed", params={"size": 3, "sort": "email", "after": first["next_cursor"]}
            )
        ).json()
    assert [m["email"] for m in page["items"]] == ["2@x.io", "1@x.io"]
    assert {k: page[k] for k in ("total", "page", "size", "pages", "has_next")} == {
        "total": 5,
        "page": 2,
        "size": 2,
        "pages": 3,
        "has_next": True,
    }
    assert [m["email"] for m in first["items"] + rest["items"]] == [f"{i}@x.io" for i in range(5)]
    assert rest["next_cursor"] is None and rest["has_next"] is False


async def test_repository_pages_can_be_returned_as_they_are(db: DatabaseSessionFactory) -> None:
    await members.insert_all([Member(email=f"{i}@x.io") for i in range(3)])
    async with client_for(make_app()) as client:
        page = (await client.get("/plain-page", params={"size": 2})).json()
        chunk = (await client.get("/plain-slice", params={"size": 2})).json()
    assert page["items"] == [{"id": m["id"], "email": m["email"]} for m in page["items"]]
    assert (page["total"], page["pages"], page["has_next"]) == (3, 2, True)
    assert len(chunk["items"]) == 2 and chunk["has_next"] is True


def test_openapi_shows_paging_parameters_and_generic_models() -> None:
    schema: dict[str, Any] = make_app().openapi()
    page_params = {p["name"]: p for p in schema["paths"]["/members"]["get"]["parameters"]}
    assert set(page_params) == {"page", "size", "sort"}
    assert page_params["size"]["schema"]["maximum"] == 100
    assert page_params["page"]["schema"]["minimum"] == 1
    slice_params = {p["name"] for p in schema["paths"]["/feed"]["get"]["parameters"]}
    assert slice_params == {"after", "size", "sort"}
    components = schema["components"]["schemas"]
    page_model = components["Page_MemberRead_"]
    assert page_model["properties"]["items"]["items"] == {"$ref": "#/components/schemas/MemberRead"}
    assert {"total", "page", "size", "pages", "has_next"} <= set(page_model["properties"])
    assert "next_cursor" in components["Slice_MemberRead_"]["properties"]


def test_constraint_error_is_raised_directly_too() -> None:
    """``ConstraintViolationError`` itself (not only subclasses) maps to 409."""
    from viveka_db.integrations.http_errors import http_error_for

    answer = http_error_for(ConstraintViolationError("x", constraint=None, columns=()))
    assert answer is not None and answer.status == 409
    assert answer.body["constraint"] is None and answer.body["columns"] == []
