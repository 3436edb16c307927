"""Issue 23: what a filtered page costs through ``Spec`` against the same page hand-written.

Articles (5,000) by 100 authors with 10 tags; the page is "articles of one author with one
tag and at least N views, newest first, page 2 of 20, with the total": the repository's
``get_page(query=Spec...)`` (the statement the filter dependency produces) against the
same two statements written in SQLAlchemy on a session of a plain engine. Both run the
items query and the ``COUNT`` in one read transaction; interleaved rounds, 1 task.
"""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

from sqlalchemy import Column, ForeignKey, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backends import MARIADB_URL, PG_URL, db_config, engine_options, server_up, sqlite_url
from harness import bench, target_line
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    Spec,
    VivekaDbBase,
    entity,
    table,
    transactional,
)

ARTICLES, AUTHORS, TAGS = 5000, 100, 10

bench_filter_tags = Table(
    "bench_filter_article_tags",
    VivekaDbBase.metadata,
    Column("article_id", ForeignKey("bench_filter_articles.id"), primary_key=True),
    Column("tag_id", ForeignKey("bench_filter_tags.id"), primary_key=True),
)


@entity
@table("bench_filter_authors")
class FAuthor(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), index=True)


@entity
@table("bench_filter_tags")
class FTag(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), index=True)


@entity
@table("bench_filter_articles")
class FArticle(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(80))
    views: Mapped[int] = mapped_column(index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("bench_filter_authors.id"), index=True)
    author: Mapped[FAuthor] = relationship()
    tags: Mapped[list[FTag]] = relationship(secondary=bench_filter_tags)


TABLES = [bench_filter_tags, FArticle.__table__, FTag.__table__, FAuthor.__table__]
articles = DbRepo(FArticle)


def spec_page() -> Spec[Any]:
    return (
        Spec.eq("author.username", "author 7")
        & Spec.eq("tags.name", "tag 3")
        & Spec.gte(FArticle.views, 100)
    )


@transactional(read_only=True)
async def through_spec() -> int:
    page = await articles.get_page(2, 20, "-views", query=spec_page())
    return page.total


@transactional(read_only=True)
async def through_select() -> int:
    criteria = (
        FArticle.author.has(FAuthor.username == "author 7"),
        FArticle.tags.any(FTag.name == "tag 3"),
        FArticle.views >= 100,
    )
    page = await articles.get_page(2, 20, "-views", query=articles.where(*criteria))
    return page.total


def hand_written(maker: async_sessionmaker[AsyncSession]) -> Any:
    async def run() -> int:
        criteria = (
            FArticle.author.has(FAuthor.username == "author 7"),
            FArticle.tags.any(FTag.name == "tag 3"),
            FArticle.views >= 100,
        )
        base = select(FArticle).where(*criteria)
        items = base.order_by(FArticle.views.desc(), FArticle.id).offset(20).limit(20)
        async with maker() as session, session.begin():
            found = list((await session.scalars(items)).all())
            total = await session.scalar(select(func.count()).select_from(base.subquery()))
        assert len(found) == 20
        return int(total or 0)

    return run


async def seed() -> None:
    rng = random.Random(1)
    factory = DatabaseSessionFactory.get_instance()
    async with factory.engine.begin() as conn:
        await conn.run_sync(lambda c: VivekaDbBase.metadata.drop_all(c, tables=TABLES))
        await conn.run_sync(lambda c: VivekaDbBase.metadata.create_all(c, tables=TABLES[::-1]))
        await conn.execute(
            insert(FAuthor), [{"id": i, "username": f"author {i}"} for i in range(1, AUTHORS + 1)]
        )
        await conn.execute(
            insert(FTag), [{"id": i, "name": f"tag {i}"} for i in range(1, TAGS + 1)]
        )
        rows = [
            {"id": i, "title": f"t{i}", "views": rng.randint(0, 999), "author_id": i % 10 + 1}
            for i in range(1, ARTICLES + 1)
        ]
        await conn.execute(insert(FArticle), rows)
        links = [
            {"article_id": i, "tag_id": t}
            for i in range(1, ARTICLES + 1)
            for t in rng.sample(range(1, TAGS + 1), 3)
        ]
        await conn.execute(insert(bench_filter_tags), links)


async def run(name: str, url: str) -> None:
    await DatabaseSessionFactory.close_all()
    DatabaseSessionFactory(db_config(url))
    await seed()
    engine = create_async_engine(url, **engine_options())
    maker = async_sessionmaker(engine, expire_on_commit=False)
    raw = hand_written(maker)
    assert await through_spec() == await raw() == await through_select() > 40
    results = await bench(
        f"filtered page, {name}",
        {
            "hand-written SQLAlchemy": raw,
            "get_page(query=Spec)": through_spec,
            "get_page(query=Select)": through_select,
        },
        reference="hand-written SQLAlchemy",
        ops=60,
        rounds=5,
    )
    ratio = results[1].median / results[0].median
    print(
        target_line(
            f"filtered page via Spec vs hand-written ({name})", "reported", f"{ratio:.2f}x", None
        )
    )
    async with DatabaseSessionFactory.get_instance().engine.begin() as conn:
        await conn.run_sync(lambda c: VivekaDbBase.metadata.drop_all(c, tables=TABLES))
    await engine.dispose()
    await DatabaseSessionFactory.close_all()


async def main() -> None:
    targets = {"sqlite": sqlite_url(), "postgresql": PG_URL, "mariadb": MARIADB_URL}
    wanted = sys.argv[1:] or list(targets)
    for name in wanted:
        url = targets[name]
        if name != "sqlite" and not server_up(url):
            print(f"{name}: server down, skipped")
            continue
        await run(name, url)


if __name__ == "__main__":
    asyncio.run(main())
