"""Hostile input through a FastAPI app: ids out of range and sorting, answered 404/422, never 500.

On every database: an id no row can have (beyond the column's range, or not a number for an
integer key) is "not found"; ``?sort=`` takes only columns that can be ordered and, where a
repository or the paging dependency narrows it, only those; the 422 lists exactly what can
be sorted, so a column such as ``password_hash`` is never named or usable.
"""

from __future__ import annotations

import logging
import types
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DatabaseSessionFactory,
    DbMiddleware,
    DbRepo,
    EntityDefinitionError,
    EntityNotFoundError,
    UnknownFieldError,
    UUIDPKMixin,
    VivekaDbBase,
    entity,
    table,
)
from viveka_db.integrations.fastapi import (
    PageDep,
    PageParams,
    SliceDep,
    SliceParams,
    add_exception_handlers,
)

HUGE = [
    "99999999999",  # beyond int32 (PostgreSQL and MariaDB INTEGER)
    str(2**63),  # beyond int64 (SQLite's OverflowError)
    str(2**64 + 5),
    "-99999999999",
    "abc",
    "1e3",
    "12abc",
    "\u0663",  # a digit, but not an ASCII one
]


@entity
@table("hostile_members")
class Member(VivekaDbBase):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(String(120), default="pbkdf2$secret")
    prefs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rank: Mapped[int] = mapped_column(SmallInteger, default=0)
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    avatar: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


@entity
@table("hostile_tokens")
class Token(VivekaDbBase, UUIDPKMixin):
    label: Mapped[str] = mapped_column(String(40))


class Members(DbRepo[Member]):
    async def find_by_rank(self, rank: int) -> Member | None: ...
    async def find_all_by_id_in(self, ids: list[int]) -> list[Member]: ...
    async def count_by_views_not(self, views: int) -> int: ...


class PublicMembers(DbRepo[Member]):
    sortable = ("name", "rank")


members = Members()
public = PublicMembers()
tokens = DbRepo(Token)


NarrowedPage = Annotated[PageParams, Depends(PageParams.sortable_by("name", "rank"))]
NarrowedSlice = Annotated[SliceParams, Depends(SliceParams.sortable_by("name"))]


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(DbMiddleware)
    add_exception_handlers(app)

    @app.get("/members/{member_id}")
    async def read(member_id: str) -> dict[str, Any]:
        return {"id": (await members.get_or_raise(member_id)).id}

    @app.get("/int-members/{member_id}")
    async def read_int(member_id: int) -> dict[str, Any]:
        return {"id": (await members.get_or_raise(member_id)).id}

    @app.get("/members/{member_id}/exists")
    async def exists(member_id: str) -> dict[str, bool]:
        return {"exists": await members.exists(member_id)}

    @app.delete("/members/{member_id}")
    async def delete(member_id: str) -> dict[str, bool]:
        return {"deleted": await members.delete(member_id)}

    @app.get("/tokens/{token_id}")
    async def read_token(token_id: str) -> dict[str, Any]:
        return {"label": (await tokens.get_or_raise(token_id)).label}

    @app.get("/members")
    async def page(params: PageDep) -> dict[str, Any]:
        found = await members.get_page(**params.kwargs())
        return {"names": [m.name for m in found.items]}

    @app.get("/feed")
    async def feed(params: SliceDep) -> dict[str, Any]:
        found = await members.get_slice(**params.kwargs())
        return {"names": [m.name for m in found.items]}

    @app.get("/public")
    async def public_page(params: PageDep) -> dict[str, Any]:
        found = await public.get_page(**params.kwargs())  # the repository narrows
        return {"names": [m.name for m in found.items]}

    @app.get("/narrowed")
    async def narrowed_page(params: NarrowedPage) -> dict[str, Any]:
        found = await members.get_page(**params.kwargs())  # the dependency narrows
        return {"names": [m.name for m in found.items]}

    @app.get("/narrowed-feed")
    async def narrowed_feed(params: NarrowedSlice) -> dict[str, Any]:
        found = await members.get_slice(**params.kwargs())
        return {"names": [m.name for m in found.items]}

    return app


@pytest.fixture
async def client(db: DatabaseSessionFactory) -> AsyncIterator[httpx.AsyncClient]:
    await members.insert_all(
        [
            Member(id=1, name="bo", prefs={"a": 1}, rank=2, views=2**40),
            Member(id=2, name="al", prefs={"b": 2}, rank=1, views=5),
        ]
    )
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


@pytest.fixture
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Any:
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


@pytest.mark.parametrize("member_id", HUGE)
async def test_an_id_no_row_can_have_is_not_found(
    client: httpx.AsyncClient, member_id: str, no_server_errors: None
) -> None:
    answer = await client.get(f"/members/{member_id}")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "EntityNotFoundError"
    assert (await client.get(f"/members/{member_id}/exists")).json() == {"exists": False}
    deleted = await client.delete(f"/members/{member_id}")
    assert (deleted.status_code, deleted.json()) == (200, {"deleted": False})


@pytest.mark.parametrize("member_id", ["99999999999", str(2**63), str(-(2**70))])
async def test_an_int_path_parameter_out_of_range_is_404(
    client: httpx.AsyncClient, member_id: str, no_server_errors: None
) -> None:
    answer = await client.get(f"/int-members/{member_id}")
    assert answer.status_code == 404, answer.text


async def test_a_string_of_digits_finds_the_row(client: httpx.AsyncClient) -> None:
    assert (await client.get("/members/1")).json() == {"id": 1}
    assert (await client.get("/members/+2")).json() == {"id": 2}
    assert (await client.get("/members/2/exists")).json() == {"exists": True}


async def test_a_uuid_key_that_is_not_a_uuid_is_not_found(
    client: httpx.AsyncClient, no_server_errors: None
) -> None:
    token = await tokens.save(Token(label="t"))
    assert (await client.get(f"/tokens/{token.id}")).json() == {"label": "t"}
    for bad in ("abc", "1", str(uuid.uuid4()) + "0"):
        assert (await client.get(f"/tokens/{bad}")).status_code == 404


async def test_every_lookup_by_value_treats_out_of_range_as_no_match(
    client: httpx.AsyncClient, backend: str
) -> None:
    assert await members.find_by(id=2**31) is None
    assert await members.find_by(id="abc") is None
    assert await members.find_all_by(rank=40_000) == []  # SMALLINT holds 16 bits
    assert await members.find_by_field("views", 2**63) is None  # BIGINT holds 64
    assert await members.find_all_by_field("id", -(2**63) - 1) == []
    with pytest.raises(EntityNotFoundError):
        await members.get_or_raise(2**70)
    assert await members.find_by_rank(40_000) is None
    found = await members.find_all_by_id_in([1, 2**40, 2**70, "abc"])
    assert [m.id for m in found] == [1]
    assert await members.count_by_views_not(2**70) == 2
    assert (await members.find_by(views=2**40)) is not None  # in range: found
    if backend == "sqlite":  # every SQLite integer holds 64 bits: still a real lookup
        await members.insert_all([Member(id=2**40, name="big")])
        big = await members.get_by_id(2**40)
        assert big is not None and big.name == "big"


@pytest.mark.parametrize("path", ["/members", "/feed"])
@pytest.mark.parametrize("field", ["prefs", "-prefs", "avatar", "name,prefs"])
async def test_sorting_by_a_column_that_cannot_be_ordered_is_422(
    client: httpx.AsyncClient, path: str, field: str, no_server_errors: None
) -> None:
    answer = await client.get(path, params={"sort": field})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "name" in detail and "rank" in detail
    assert "prefs" not in detail and "avatar" not in detail


async def test_sorting_by_an_orderable_column_works(client: httpx.AsyncClient) -> None:
    assert (await client.get("/members", params={"sort": "name"})).json() == {"names": ["al", "bo"]}
    assert (await client.get("/feed", params={"sort": "-rank"})).json() == {"names": ["bo", "al"]}


@pytest.mark.parametrize("path", ["/public", "/narrowed", "/narrowed-feed"])
@pytest.mark.parametrize("field", ["password_hash", "-password_hash", "views", "nope", "prefs"])
async def test_a_narrowed_sort_refuses_and_never_names_other_columns(
    client: httpx.AsyncClient, path: str, field: str, no_server_errors: None
) -> None:
    answer = await client.get(path, params={"sort": f"name,{field}"})
    assert answer.status_code == 422, answer.text
    assert "password_hash" not in answer.text
    assert "views" not in answer.text
    assert "name" in answer.text


async def test_a_narrowed_sort_accepts_its_fields(client: httpx.AsyncClient) -> None:
    for path in ("/public", "/narrowed"):
        answer = await client.get(path, params={"sort": "-rank"})
        assert answer.json() == {"names": ["bo", "al"]}, path
    assert (await client.get("/narrowed-feed", params={"sort": "name"})).status_code == 200


def test_the_narrowed_dependency_documents_its_fields() -> None:
    schema = make_app().openapi()
    parameters = schema["paths"]["/narrowed"]["get"]["parameters"]
    sort = next(p for p in parameters if p["name"] == "sort")
    assert "Sortable fields: name, rank" in sort["description"]
    assert "password_hash" not in str(schema["paths"]["/narrowed"])


async def test_the_repository_error_lists_only_what_can_be_sorted(
    db: DatabaseSessionFactory,
) -> None:
    with pytest.raises(UnknownFieldError) as caught:
        await public.get_page(sort="password_hash")
    assert "password_hash" not in str(caught.value)
    assert "name, rank" in str(caught.value)
    with pytest.raises(UnknownFieldError) as everything:
        await members.get_page(sort="nope")
    assert "prefs" not in str(everything.value) and "avatar" not in str(everything.value)
    assert "password_hash" in str(everything.value)  # not narrowed: every orderable column


@pytest.mark.parametrize("sortable", [("prefs",), ("nope",), ("name", "avatar"), "name"])
def test_sortable_is_checked_when_the_class_is_created(sortable: object) -> None:
    with pytest.raises(EntityDefinitionError, match="sortable"):
        types.new_class("Bad", (DbRepo[Member],), exec_body=lambda ns: ns.update(sortable=sortable))
