"""Projections: rows for column selects, DTOs from derived finders and ``project()``."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Row, select

from tests.repository.rel_models import Article, ArticleRepo, seed
from tests.sql import statements
from viveka_db import DatabaseSessionFactory, DbRepo, DerivedQueryError, UnknownFieldError


@dataclasses.dataclass(frozen=True)
class TitleOnly:
    id: int
    title: str


class TitleViews(NamedTuple):
    title: str
    views: int


class TitleModel(BaseModel):
    title: str
    views: int


class AuthorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    username: str


class ArticleWithAuthor(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    title: str
    author: AuthorRead


class Articles(ArticleRepo):
    async def find_all_by_author_username(self, username: str) -> list[TitleOnly]: ...
    async def find_all_by_views_greater_than(self, views: int) -> list[TitleViews]: ...
    async def find_by_title(self, title: str) -> TitleModel | None: ...
    async def find_all_by_tags_name(self, name: str) -> list[ArticleWithAuthor]: ...
    async def find_all_by_views(self, views: int) -> list[Article]: ...


repo = Articles()


def _selected_columns(sql: str) -> str:
    return sql.upper().split("FROM")[0]


async def test_multi_column_select_returns_rows(db: DatabaseSessionFactory) -> None:
    await seed(2)
    rows = await repo.all(select(Article.id, Article.title).order_by(Article.id))
    assert len(rows) == 4
    assert isinstance(rows[0], Row)
    assert rows[0].title == "user00 post 0" and rows[0].id > 0
    first = await repo.first(select(Article.title, Article.views).order_by(Article.id.desc()))
    assert tuple(first) == ("user01 post 1", 10)
    assert await repo.all(select(Article.views).order_by(Article.views)) == [0, 0, 10, 10]


async def test_derived_finders_select_only_the_dto_columns(db: DatabaseSessionFactory) -> None:
    await seed(2)
    with statements(db.engine) as seen:
        found = await repo.find_all_by_author_username("user01")
    assert found == [
        TitleOnly(found[0].id, "user01 post 0"),
        TitleOnly(found[1].id, "user01 post 1"),
    ]
    columns = _selected_columns(seen[0])
    assert "TITLE" in columns and "VIEWS" not in columns and "VERSION" not in columns

    with statements(db.engine) as seen:
        popular = await repo.find_all_by_views_greater_than(5)
    assert popular == [TitleViews("user00 post 1", 10), TitleViews("user01 post 1", 10)]
    assert "AUTHOR_ID" not in _selected_columns(seen[0])

    model = await repo.find_by_title("user00 post 1")
    assert model == TitleModel(title="user00 post 1", views=10)
    assert await repo.find_by_title("nope") is None


async def test_a_dto_with_a_relationship_field_loads_it(db: DatabaseSessionFactory) -> None:
    await seed(2)
    with statements(db.engine) as seen:
        found = await repo.find_all_by_tags_name("python")
    assert [(a.title, a.author.username) for a in found] == [
        ("user00 post 0", "user00"),
        ("user01 post 1", "user01"),
    ]
    assert len(seen) == 1  # author joined, not loaded per article


async def test_project_any_query(db: DatabaseSessionFactory) -> None:
    await seed(2)
    with statements(db.engine) as seen:
        titles = await repo.project(TitleViews, repo.where(Article.views > 0).order_by(Article.id))
    assert [t.title for t in titles] == ["user00 post 1", "user01 post 1"]
    assert "AUTHOR_ID" not in _selected_columns(seen[0])
    every = await repo.project(TitleOnly)
    assert len(every) == 4 and all(isinstance(t, TitleOnly) for t in every)
    nested = await repo.project(ArticleWithAuthor, load=[Article.tags])
    assert {a.author.username for a in nested} == {"user00", "user01"}


async def test_project_refuses_unknown_fields_and_classes(db: DatabaseSessionFactory) -> None:
    @dataclasses.dataclass
    class Wrong:
        title: str
        stars: int

    with pytest.raises(UnknownFieldError, match="stars"):
        await repo.project(Wrong)
    with pytest.raises(TypeError, match="dataclass, NamedTuple or Pydantic"):
        await repo.project(int)


@dataclasses.dataclass
class WithStars:
    title: str
    stars: int


def test_a_derived_dto_with_unknown_fields_fails_at_class_creation() -> None:
    with pytest.raises(DerivedQueryError, match="stars"):

        class Broken(DbRepo[Article]):
            async def find_all_by_views(self, views: int) -> list[WithStars]: ...
