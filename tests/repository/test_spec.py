"""Specifications select exactly what the equivalent SQLAlchemy clause selects, on every
read of a repository; relationship paths are EXISTS (no duplicate rows, exact counts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import and_, false, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from tests.repository.query_data import make_data
from tests.repository.query_models import Label, Note, Post, Status, Writer
from tests.sql import statements
from viveka_db import DatabaseSessionFactory, DbRepo, Spec, UnknownFieldError


@dataclass
class PostTitle:
    id: int
    title: str


CASES: list[tuple[str, Spec[Any], ColumnElement[bool]]] = [
    ("eq", Spec.eq(Post.title, "SQL"), Post.title == "SQL"),
    ("eq None", Spec.eq(Post.subtitle, None), Post.subtitle.is_(None)),
    ("ne", Spec.ne(Post.subtitle, "x"), Post.subtitle != "x"),
    ("lt", Spec.lt(Post.views, 4), Post.views < 4),
    ("lte", Spec.lte(Post.views, 3), Post.views <= 3),
    ("lte decimal", Spec.lte(Post.price, Decimal("4.50")), Post.price <= Decimal("4.50")),
    ("gt", Spec.gt(Post.day, date(2024, 1, 14)), Post.day > date(2024, 1, 14)),
    ("gte", Spec.gte(Post.views, 7), Post.views >= 7),
    ("in", Spec.in_(Post.views, [1, 3, 5]), Post.views.in_([1, 3, 5])),
    ("in empty", Spec.in_(Post.views, []), Post.views.in_([])),
    (
        "in subquery",
        Spec.in_(Post.writer_id, select(Writer.id).where(Writer.age >= 30)),
        Post.writer_id.in_(select(Writer.id).where(Writer.age >= 30)),
    ),
    ("like", Spec.like(Post.title, "%sql%"), Post.title.like("%sql%")),
    ("ilike", Spec.ilike(Post.title, "%SQL%"), Post.title.ilike("%SQL%")),
    ("is_null", Spec.is_null(Post.editor_id), Post.editor_id.is_(None)),
    ("is not null", Spec.is_null(Post.subtitle, False), Post.subtitle.is_not(None)),
    ("enum", Spec.eq(Post.status, Status.live), Post.status == Status.live),
    ("bool", Spec.eq(Post.published, True), Post.published.is_(True)),
    (
        "and/or/not",
        (Spec.eq(Post.published, True) & Spec.gte(Post.views, 3)) | ~Spec.lt(Post.views, 8),
        or_(and_(Post.published.is_(True), Post.views >= 3), not_(Post.views < 8)),
    ),
    ("many-to-one path", Spec.eq("writer.name", "ada"), Post.writer.has(Writer.name == "ada")),
    (
        "optional many-to-one path",
        Spec.is_null("editor.name"),
        Post.editor.has(Writer.name.is_(None)),
    ),
    ("one-to-many path", Spec.gte("notes.stars", 4), Post.notes.any(Note.stars >= 4)),
    (
        "many-to-many path",
        Spec.in_("labels.name", ["db", "py"]),
        Post.labels.any(Label.name.in_(["db", "py"])),
    ),
    (
        "path and column",
        Spec.eq("labels.name", "web") & ~Spec.eq("writer.name", "bob"),
        and_(Post.labels.any(Label.name == "web"), not_(Post.writer.has(Writer.name == "bob"))),
    ),
    ("where", Spec.where(Post.views + 1 > 5), Post.views + 1 > 5),
    ("all_of()", Spec.all_of(), true()),
    ("any_of()", Spec.any_of(), false()),
]


@pytest.fixture
async def posts(db: DatabaseSessionFactory) -> DbRepo[Post]:
    await make_data()
    return DbRepo(Post)


async def _ids_of(repo: DbRepo[Post], clause: ColumnElement[bool]) -> list[int]:
    return list(await repo.all(select(Post.id).where(clause).order_by(Post.id)))


async def test_each_spec_selects_what_its_sqlalchemy_clause_selects(posts: DbRepo[Post]) -> None:
    seen_sizes: set[int] = set()
    for name, spec, clause in CASES:
        expected = await _ids_of(posts, clause)
        assert [p.id for p in await posts.all(spec)] == expected, name
        assert await posts.count(spec) == len(expected), name
        seen_sizes.add(len(expected))
    assert len(seen_sizes) > 5  # the data tells the cases apart


async def test_relationship_paths_never_duplicate_rows(posts: DbRepo[Post]) -> None:
    many = Spec.gte("notes.stars", 1) | Spec.is_null("labels.name", False)
    expected = await _ids_of(posts, or_(Post.notes.any(), Post.labels.any()))
    assert len(expected) > 10
    page = await posts.get_page(1, 7, query=many)  # not the last page: a COUNT runs
    assert page.total == len(expected)
    walked: list[int] = []
    after = None
    while True:
        chunk = await posts.get_slice(after, 9, query=many)
        walked += [p.id for p in chunk.items]
        if chunk.next_cursor is None:
            break
        after = chunk.next_cursor
    assert walked == expected  # each once
    streamed = [p.id async for p in posts.stream(many, chunk_size=4)]
    assert streamed == expected


async def test_a_spec_works_as_query_on_every_read(posts: DbRepo[Post]) -> None:
    spec = Spec.eq(Post.published, True) & Spec.eq("writer.name", "ada")
    clause = and_(Post.published.is_(True), Post.writer.has(Writer.name == "ada"))
    expected = await _ids_of(posts, clause)
    assert expected
    assert [p.id for p in await posts.get_all(0, 100, spec)] == expected
    first = await posts.first(spec)
    assert first is not None and first.id == expected[0]
    page = await posts.get_page(1, 100, "-views", query=spec)
    assert sorted(p.id for p in page.items) == expected and page.total == len(expected)
    projected = await posts.project(PostTitle, spec)
    assert [p.id for p in projected] == expected and all(
        isinstance(p, PostTitle) for p in projected
    )
    assert [p.id async for p in posts.stream(spec, chunk_size=2)] == expected
    grouped = await posts.count_grouped_by(Post.published, spec)
    assert grouped == {True: len(expected)}
    ids_via_where = await posts.all(select(Post.id).where(spec).order_by(Post.id))
    assert list(ids_via_where) == expected  # attribute-only specs work inside .where() too


async def test_the_page_count_has_no_joins_or_loader_options(
    posts: DbRepo[Post], db: DatabaseSessionFactory
) -> None:
    spec = Spec.gte("notes.stars", 2) & Spec.eq("labels.name", "db")
    with statements(db.engine) as seen:
        page = await posts.get_page(
            1, 3, "writer.name", load=[Post.labels, Post.notes, Post.writer], query=spec
        )
    counts = [s for s in seen if "count(" in s.lower()]
    assert len(counts) == 1, seen
    assert "JOIN" not in counts[0].upper()
    assert page.total == len(
        await _ids_of(
            posts, and_(Post.notes.any(Note.stars >= 2), Post.labels.any(Label.name == "db"))
        )
    )
    assert all(p.writer is not None for p in page.items)  # the loads still applied to items


async def test_bad_specs_are_refused_before_sql(posts: DbRepo[Post]) -> None:
    with pytest.raises(UnknownFieldError) as missing:
        await posts.count(Spec.eq("writer.nmae", "ada"))
    assert "Writer" in str(missing.value) and "name" in str(missing.value)  # the related entity
    with pytest.raises(UnknownFieldError) as other:
        await posts.count(Spec.eq(Writer.name, "ada"))  # a field of another entity
    assert "writer.name" in str(other.value) or "path" in str(other.value)
    with pytest.raises(TypeError):
        Spec.eq(42, 1)  # type: ignore[call-overload, arg-type]
    with pytest.raises(TypeError):
        _ = Spec.eq(Post.views, 1) & (Post.views == 1)  # type: ignore[operator]
    with pytest.raises(TypeError, match="criterion"):
        select(Post).where(Spec.eq("writer.name", "ada"))
    assert "ada" not in repr(Spec.eq("writer.name", "ada"))  # values stay out of reprs


async def test_specs_combine_without_mutating(posts: DbRepo[Post]) -> None:
    a, b = Spec.lt(Post.views, 3), Spec.gt(Post.views, 6)
    either = a | b
    both = a & b
    assert await posts.count(both) == 0
    assert await posts.count(either) == await posts.count(a) + await posts.count(b)
    assert await posts.count(~either) == await posts.count() - await posts.count(either)
