"""``filters_for`` through FastAPI and an ASGI transport, on every database: each operator,
relationship filters (EXISTS: no duplicates, exact totals), combined filters, 422 for
unknown fields and operators without naming hidden columns, OpenAPI types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import ColumnElement, and_, func, select

from tests.repository.query_data import make_data
from tests.repository.query_models import Label, Note, Post, Status, Writer
from viveka_db import DatabaseSessionFactory, DbMiddleware, DbRepo, Spec
from viveka_db.integrations.fastapi import (
    FilterParams,
    PageDep,
    SliceDep,
    add_exception_handlers,
    filters_for,
)

posts = DbRepo(Post)
writers = DbRepo(Writer)

PostFilters = filters_for(
    Post,
    allow={
        "title": ["eq", "ne", "in", "like", "ilike"],
        "views": ["lt", "lte", "gt", "gte", "in"],
        "price": ["gte"],
        "day": ["gt", "lte"],
        "published": ["eq"],
        "status": ["eq"],
        "subtitle": ["is_null", "eq"],
        "created_at": ["gte"],
        "writer.name": ["eq", "is_null"],
        "notes.stars": ["gte"],
        "labels.name": ["eq", "in"],
    },
)
WriterFilters = filters_for(Writer, allow={"name", "age"})
RenamedFilters = filters_for(
    Post, allow={"writer.name": ["eq", "in"], "views": ["gte"]}, names={"writer.name": "by"}
)


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(DbMiddleware)
    add_exception_handlers(app)

    @app.get("/posts")
    async def page_of_posts(
        params: PageDep, filters: Annotated[FilterParams[Post], Depends(PostFilters)]
    ) -> dict[str, Any]:
        page = await posts.get_page(**params.kwargs(), query=filters)
        return {"ids": [p.id for p in page.items], "total": page.total}

    @app.get("/posts/slice")
    async def slice_of_posts(
        params: SliceDep, filters: Annotated[FilterParams[Post], Depends(PostFilters)]
    ) -> dict[str, Any]:
        chunk = await posts.get_slice(**params.kwargs(), query=filters)
        return {"ids": [p.id for p in chunk.items], "next": chunk.next_cursor}

    @app.get("/posts/count")
    async def count_posts(filters: Annotated[FilterParams[Post], Depends(PostFilters)]) -> int:
        return await posts.count(filters)

    @app.get("/posts/all")
    async def stream_posts(
        filters: Annotated[FilterParams[Post], Depends(PostFilters)],
    ) -> list[int]:
        return [p.id async for p in posts.stream(filters, chunk_size=5)]

    @app.get("/writers")
    async def list_writers(
        filters: Annotated[FilterParams[Writer], Depends(WriterFilters)],
    ) -> list[int]:
        return [w.id for w in await writers.all(filters)]

    @app.get("/renamed")
    async def renamed(
        filters: Annotated[FilterParams[Post], Depends(RenamedFilters)],
    ) -> list[int]:
        return [p.id for p in await posts.all(filters)]

    return app


@pytest.fixture
async def client(db: DatabaseSessionFactory) -> AsyncIterator[httpx.AsyncClient]:
    await make_data()
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def _expected(clause: ColumnElement[bool]) -> list[int]:
    return list(await posts.all(select(Post.id).where(clause).order_by(Post.id)))


OPERATOR_CASES: list[tuple[dict[str, Any], ColumnElement[bool]]] = [
    ({"title": "SQL"}, Post.title == "SQL"),
    ({"title__ne": "SQL"}, Post.title != "SQL"),
    ({"title__in": ["SQL", "async tips"]}, Post.title.in_(["SQL", "async tips"])),
    ({"title__like": "%sql%"}, Post.title.like("%sql%")),
    ({"title__ilike": "%SQL%"}, Post.title.ilike("%SQL%")),
    ({"views__lt": 3}, Post.views < 3),
    ({"views__lte": 3}, Post.views <= 3),
    ({"views__gt": 6}, Post.views > 6),
    ({"views__gte": 6}, Post.views >= 6),
    ({"views__in": [0, 9]}, Post.views.in_([0, 9])),
    ({"price__gte": "5.25"}, Post.price >= Decimal("5.25")),
    ({"day__gt": "2024-01-20"}, Post.day > date(2024, 1, 20)),
    ({"day__lte": "2024-01-05"}, Post.day <= date(2024, 1, 5)),
    ({"published": "true"}, Post.published.is_(True)),
    ({"status": "live"}, Post.status == Status.live),
    ({"subtitle__is_null": "true"}, Post.subtitle.is_(None)),
    ({"subtitle__is_null": "false"}, Post.subtitle.is_not(None)),
    ({"created_at__gte": "2000-01-01T00:00:00Z"}, Post.id.is_not(None)),
    ({"writer.name": "ada"}, Post.writer.has(Writer.name == "ada")),
    ({"writer.name__is_null": "true"}, Post.writer.has(Writer.name.is_(None))),
]


async def test_each_operator_selects_what_the_clause_selects(client: httpx.AsyncClient) -> None:
    for params, clause in OPERATOR_CASES:
        expected = await _expected(clause)
        answer = await client.get("/posts", params={**params, "size": 100, "sort": "id"})
        assert answer.status_code == 200, (params, answer.text)
        assert answer.json() == {"ids": expected, "total": len(expected)}, params
        assert (await client.get("/posts/count", params=params)).json() == len(expected)


async def test_relationship_filters_have_no_duplicates_and_exact_totals(
    client: httpx.AsyncClient,
) -> None:
    cases: list[tuple[dict[str, Any], ColumnElement[bool]]] = [
        ({"notes.stars__gte": 1}, Post.notes.any(Note.stars >= 1)),  # one-to-many
        (
            {"labels.name__in": ["db", "py", "web"]},
            Post.labels.any(Label.name.in_(["db", "py", "web"])),
        ),
    ]
    for params, clause in cases:
        expected = await _expected(clause)
        joined = (
            select(func.count())
            .select_from(Post)
            .join(Post.notes if "notes.stars__gte" in params else Post.labels)
        )
        assert await posts.all(joined) != [len(expected)]  # a join would have duplicated rows
        first = await client.get("/posts", params={**params, "size": 5, "sort": "id"})
        assert first.json()["total"] == len(expected)  # from the COUNT: not the last page
        ids: list[int] = []
        for page in range(1, len(expected) // 5 + 2):
            body = (
                await client.get("/posts", params={**params, "size": 5, "page": page, "sort": "id"})
            ).json()
            ids += body["ids"]
        assert ids == expected
        walked: list[int] = []
        cursor: str | None = None
        while True:
            query = {**params, "size": 4, **({"after": cursor} if cursor else {})}
            body = (await client.get("/posts/slice", params=query)).json()
            walked += body["ids"]
            cursor = body["next"]
            if cursor is None:
                break
        assert walked == expected
        assert (await client.get("/posts/all", params=params)).json() == expected


async def test_filters_combine(client: httpx.AsyncClient) -> None:
    params = {"views__gte": 2, "labels.name": "db", "title__ilike": "%s%", "writer.name": "bob"}
    expected = await _expected(
        and_(
            Post.views >= 2,
            Post.labels.any(Label.name == "db"),
            Post.title.ilike("%s%"),
            Post.writer.has(Writer.name == "bob"),
        )
    )
    body = (await client.get("/posts", params={**params, "size": 100})).json()
    assert sorted(body["ids"]) == expected and body["total"] == len(expected)
    assert (await client.get("/posts/count", params=params)).json() == len(expected)
    none = {"views__gt": 5, "views__lt": 3}
    assert (await client.get("/posts/count", params=none)).json() == 0


async def test_unknown_fields_and_operators_are_422_naming_only_allowed_ones(
    client: httpx.AsyncClient,
) -> None:
    for params in (
        {"password_hash": "x"},
        {"password_hash__like": "%"},
        {"writer.password_hash": "secret-1"},
        {"writer.password_hash__ilike": "secret%"},
        {"email": "w1@example.com"},
    ):
        for path in ("/posts", "/writers"):
            answer = await client.get(path, params=params)
            if (
                path == "/posts"
                and "." not in next(iter(params))
                and "__" not in next(iter(params))
            ):
                continue  # a name that is no field of Post is an ordinary unknown parameter
            assert answer.status_code == 422, (path, params)
            assert "password_hash" not in answer.text and "email" not in answer.text
            assert "secret" not in answer.text
    typo = await client.get("/posts", params={"titel__like": "x"})
    assert typo.status_code == 422
    assert (
        "titel" not in typo.text
        and "title, title__ne, title__in, title__like, title__ilike," in typo.text
    )
    bad_op = await client.get("/posts", params={"views__like": "1"})
    assert (
        bad_op.status_code == 422
        and "'like'" in bad_op.text
        and "views__lt, views__lte" in bad_op.text
    )
    eq_spelt_out = await client.get("/posts", params={"title__eq": "SQL"})
    assert eq_spelt_out.status_code == 422 and "title=value" in eq_spelt_out.text
    hidden = await client.get("/writers", params={"password_hash": "secret-1"})
    assert hidden.status_code == 422 and "name__like" in hidden.text and "age__gte" in hidden.text
    assert (await client.get("/posts", params={"page": 1, "size": 3})).status_code == 200


async def test_values_are_validated_by_column_type(client: httpx.AsyncClient) -> None:
    for params in (
        {"views__gte": "many"},
        {"day__gt": "yesterday"},
        {"status": "archived"},
        {"published": "maybe"},
        {"price__gte": "1e999999"},
        {"created_at__gte": "2024-01-01T00:00:00"},  # no time zone: refused, not guessed
        {"views__in": [str(i) for i in range(101)]},  # too many values
    ):
        answer = await client.get("/posts", params=params)
        assert answer.status_code == 422, (params, answer.text)


async def test_openapi_declares_each_filter_with_its_type(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    declared = {p["name"]: p["schema"] for p in spec["paths"]["/posts"]["get"]["parameters"]}

    def types(schema: dict[str, Any]) -> set[str]:
        options = schema.get("anyOf", [schema])
        return {o.get("format", o.get("type", "ref")) for o in options if o.get("type") != "null"}

    assert types(declared["title"]) == {"string"}
    assert types(declared["views__gte"]) == {"integer"}
    assert types(declared["created_at__gte"]) == {"date-time"}
    assert types(declared["day__gt"]) == {"date"}
    assert types(declared["published"]) == {"boolean"}
    assert types(declared["subtitle__is_null"]) == {"boolean"}
    in_array = declared["views__in"]["anyOf"][0]
    assert in_array["type"] == "array" and in_array["maxItems"] == 100
    assert in_array["items"]["type"] == "integer" and in_array["items"]["maximum"] == 2**31 - 1
    assert "writer.name" in declared and "labels.name__in" in declared
    assert "password_hash" not in str(spec)
    assert not any(name.startswith("f") and name[1:].isdigit() for name in declared)
    writer_params = {p["name"] for p in spec["paths"]["/writers"]["get"]["parameters"]}
    assert {
        "name",
        "name__like",
        "name__ilike",
        "name__is_null",
        "age__gte",
        "age__is_null",
    } <= writer_params
    assert "age__like" not in writer_params


def test_bad_allow_lists_fail_when_the_app_is_built() -> None:
    with pytest.raises(Exception, match="nmae"):
        filters_for(Post, allow={"writer.nmae": ["eq"]})
    with pytest.raises(ValueError, match="like"):
        filters_for(Post, allow={"views": ["like"]})
    with pytest.raises(ValueError, match="regex"):
        filters_for(Post, allow={"title": ["regex"]})
    with pytest.raises(ValueError):
        filters_for(Post, allow={})


async def test_filter_params_are_specs(client: httpx.AsyncClient) -> None:
    spec = FilterParams[Post]([Spec.eq("writer.name", "ada")], {"writer.name": "ada"})
    expected = await _expected(Post.writer.has(Writer.name == "ada"))
    assert [p.id for p in await posts.all(spec & Spec.gte(Post.views, 0))] == expected
    assert spec.values == {"writer.name": "ada"}


async def test_public_names(client: httpx.AsyncClient) -> None:
    expected = await _expected(Post.writer.has(Writer.name.in_(["ada", "cy"])))
    answer = await client.get("/renamed", params={"by__in": ["ada", "cy"]})
    assert answer.json() == expected
    ada = await _expected(Post.writer.has(Writer.name == "ada"))
    assert (await client.get("/renamed", params={"by": "ada"})).json() == ada
    old_name = await client.get("/renamed", params={"writer.name": "ada"})
    assert old_name.status_code == 422 and "writer" not in old_name.text  # the schema stays hidden
    assert "are: by, by__in, views__gte" in old_name.text
    spec = (await client.get("/openapi.json")).json()
    names = {p["name"] for p in spec["paths"]["/renamed"]["get"]["parameters"]}
    assert names == {"by", "by__in", "views__gte"}


def test_bad_public_names_fail_when_the_app_is_built() -> None:
    with pytest.raises(ValueError, match="does not list"):
        filters_for(Post, allow={"views": ["eq"]}, names={"title": "t"})
    with pytest.raises(ValueError, match="distinct"):
        filters_for(
            Post, allow={"views": ["eq"], "title": ["eq"]}, names={"views": "x", "title": "x"}
        )
    with pytest.raises(ValueError, match="__"):
        filters_for(Post, allow={"views": ["eq"]}, names={"views": "a__b"})
