"""Derived query names through relationships, bulk ``delete_by``, grouped counts, paging input."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from sqlalchemy.exc import SAWarning

from tests.repository.models import Account, AccountRepo
from tests.repository.rel_models import (
    Article,
    ArticleRepo,
    Author,
    AuthorRepo,
    Comment,
    CommentRepo,
    seed,
)
from tests.sql import statements
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    DerivedQueryError,
    PaginationError,
    current_session,
    transactional,
)


class Articles(ArticleRepo):
    async def find_all_by_author_username(self, username: str) -> list[Article]: ...
    async def find_all_by_author_profile_bio_like(self, pattern: str) -> list[Article]: ...
    async def find_all_by_tags_name(self, name: str) -> list[Article]: ...
    async def find_all_by_tags_name_in(self, names: list[str]) -> list[Article]: ...
    async def find_all_by_comments_body_like(self, pattern: str) -> list[Article]: ...
    async def find_all_by_tags_name_and_author_username(
        self, tag: str, username: str
    ) -> list[Article]: ...
    async def find_all_by_author_username_or_views_greater_than(
        self, username: str, views: int
    ) -> list[Article]: ...
    async def find_top_2_by_tags_name_order_by_views_desc(self, name: str) -> list[Article]: ...
    async def exists_by_tags_name(self, name: str) -> bool: ...
    async def count_by_author_username(self, username: str) -> int: ...
    async def count_by_tags_name(self, name: str) -> int: ...
    async def find_all_by_author_username_and_author_profile_bio_like(
        self, username: str, bio: str
    ) -> list[Article]: ...
    async def delete_by_author_username(self, username: str) -> int: ...
    async def delete_by_views_greater_than_equal(self, views: int) -> int: ...


class Authors(AuthorRepo):
    async def find_all_by_articles_tags_name(self, name: str) -> list[Author]: ...
    async def find_by_profile_bio(self, bio: str) -> Author | None: ...
    async def count_by_articles_comments_body_like(self, pattern: str) -> int: ...


class Comments(CommentRepo):
    async def find_all_by_article_tags_name(self, name: str) -> list[Comment]: ...
    async def find_all_by_article_author_username(self, username: str) -> list[Comment]: ...
    async def delete_by_article_author_username(self, username: str) -> int: ...
    async def delete_by_body_like(self, pattern: str) -> int: ...


articles, authors, comments = Articles(), Authors(), Comments()


def titles(found: list[Article]) -> list[str]:
    return [a.title for a in found]


async def test_many_to_one_and_nested_paths(db: DatabaseSessionFactory) -> None:
    await seed(3)
    with statements(db.engine) as seen:
        by_author = await articles.find_all_by_author_username("user01")
    assert titles(by_author) == ["user01 post 0", "user01 post 1"]
    assert "LEFT OUTER JOIN" in seen[0].upper() and "EXISTS" not in seen[0].upper()
    assert titles(await articles.find_all_by_author_profile_bio_like("%user02")) == [
        "user02 post 0",
        "user02 post 1",
    ]
    assert await articles.count_by_author_username("user00") == 2
    assert await articles.count_by_author_username("nobody") == 0
    with statements(db.engine) as seen:
        found = await comments.find_all_by_article_author_username("user00")
    assert len(found) == 4 and all("user00" in c.body for c in found)
    assert seen[0].upper().count("LEFT OUTER JOIN") == 2  # comment -> article -> author
    # a many-to-one then a many-to-many: joined, then EXISTS
    on_orm = await comments.find_all_by_article_tags_name("orm")
    assert len(on_orm) == 4 and all("user01" in c.body for c in on_orm)
    # two conditions through the same relationship share its join
    with statements(db.engine) as seen:
        both = await articles.find_all_by_author_username_and_author_profile_bio_like(
            "user02", "bio%"
        )
    assert titles(both) == ["user02 post 0", "user02 post 1"]
    assert seen[0].upper().count("LEFT OUTER JOIN") == 2  # author once, its profile once
    author = await authors.find_by_profile_bio("bio of user01")
    assert author is not None and author.username == "user01"


async def test_collections_match_as_exists_without_duplicates(
    db: DatabaseSessionFactory,
) -> None:
    await seed(3)  # articles i get tags i%4 and (i+1)%4 of python, sql, async, orm
    with statements(db.engine) as seen:
        tagged = await articles.find_all_by_tags_name_in(["python", "sql", "async", "orm"])
    assert len(tagged) == 6 == len({a.id for a in tagged})  # two matching tags, one row each
    assert "EXISTS" in seen[0].upper() and "JOIN" not in seen[0].upper()
    assert titles(await articles.find_all_by_tags_name("python")) == [
        "user00 post 0",
        "user01 post 1",
        "user02 post 0",
    ]
    # every article has two comments matching: still one row each
    assert len(await articles.find_all_by_comments_body_like("comment%")) == 6
    assert await articles.exists_by_tags_name("orm") is True
    assert await articles.exists_by_tags_name("rust") is False
    assert await articles.count_by_tags_name("python") == 3
    both = await articles.find_all_by_tags_name_and_author_username("python", "user01")
    assert titles(both) == ["user01 post 1"]
    top = await articles.find_top_2_by_tags_name_order_by_views_desc("python")
    assert titles(top) == ["user01 post 1", "user00 post 0"]
    # one-to-many then many-to-many, from the other side
    assert [a.username for a in await authors.find_all_by_articles_tags_name("orm")] == [
        "user01"  # both of its articles have the tag: still once
    ]
    assert [a.username for a in await authors.find_all_by_articles_tags_name("python")] == [
        "user00",
        "user01",
        "user02",
    ]
    assert await authors.count_by_articles_comments_body_like("%user02 post 1") == 1


async def test_or_keeps_its_meaning_across_a_relationship(db: DatabaseSessionFactory) -> None:
    await seed(3)
    found = await articles.find_all_by_author_username_or_views_greater_than("user00", 5)
    assert titles(found) == ["user00 post 0", "user00 post 1", "user01 post 1", "user02 post 1"]


def test_relationship_paths_are_checked_when_the_class_is_created() -> None:
    with pytest.raises(DerivedQueryError, match="author_<attribute>") as caught:

        class Broken(DbRepo[Article]):
            async def find_all_by_author_nickname(self, nickname: str) -> list[Article]: ...

    assert "author_nickname" in str(caught.value)
    with pytest.raises(DerivedQueryError, match="unknown attribute in order_by"):

        class BadOrder(DbRepo[Article]):
            async def find_all_by_views_order_by_author_username(
                self, views: int
            ) -> list[Article]: ...


async def test_bulk_delete_is_one_statement_and_idempotent(db: DatabaseSessionFactory) -> None:
    await seed(3)
    with statements(db.engine) as seen:
        assert await articles.delete_by_author_username("user01") == 2
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("DELETE")
    assert await articles.delete_by_author_username("user01") == 0
    remaining = await articles.all()
    assert {a.author_id for a in remaining} == {a.id for a in await AuthorRepo().all()} - {
        (await AuthorRepo().find_by(username="user01")).id  # type: ignore[union-attr]
    }
    # database cascades removed their comments and tag links
    assert await CommentRepo().count() == 8


async def test_bulk_delete_of_loaded_versioned_rows_raises_no_lock_error(
    db: DatabaseSessionFactory,
) -> None:
    """Rows another transaction already deleted simply do not count."""
    await seed(2)

    @transactional
    async def delete_loaded() -> tuple[int, int, bool]:
        loaded = await articles.all()  # versioned entities in the session
        first = await articles.delete_by_views_greater_than_equal(0)
        again = await articles.delete_by_views_greater_than_equal(0)
        await current_session().flush()  # nothing stale left behind in the session
        return first, again, loaded[0] in current_session()

    assert await delete_loaded() == (4, 0, False)


async def test_concurrent_identical_deletes_count_each_row_once(
    db: DatabaseSessionFactory,
) -> None:
    await seed(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SAWarning)  # "expected to delete 2 rows" and the like
        counts = await asyncio.gather(
            articles.delete_by_author_username("user02"),
            articles.delete_by_author_username("user02"),
        )
    assert sorted(counts) == [0, 2]
    assert await articles.count_by_author_username("user02") == 0


async def test_soft_delete_entity_gets_one_update(db: DatabaseSessionFactory) -> None:
    await seed(2)
    with statements(db.engine) as seen:
        assert await comments.delete_by_article_author_username("user00") == 4
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("UPDATE")
    assert await comments.delete_by_article_author_username("user00") == 0
    assert await comments.count() == 4
    assert await comments.with_deleted().count() == 8
    assert all(c.deleted_at is not None for c in await comments.only_deleted().all())


async def test_count_grouped_by(db: DatabaseSessionFactory) -> None:
    seeded = await seed(3)
    by_author = await articles.count_grouped_by(Article.author_id)
    assert sorted(by_author.values()) == [2, 2, 2]
    per_article = await comments.count_grouped_by(
        "article_id", query=comments.where(Comment.article_id.in_([seeded[0].id, seeded[1].id]))
    )
    assert per_article == {seeded[0].id: 2, seeded[1].id: 2}
    assert await articles.count_grouped_by("views", articles.where(Article.views > 99)) == {}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: articles.get_all(-1), "skip"),
        (lambda: articles.get_all(0, -5), "limit"),
        (lambda: articles.get_all(0, 10**6), "limit"),
        (lambda: articles.get_all(True, 10), "skip"),
        (lambda: articles.get_all("3", 10), "skip"),  # type: ignore[arg-type]
        (lambda: articles.get_all(0, 2.5), "limit"),  # type: ignore[arg-type]
        (lambda: articles.get_page(0), "page"),
        (lambda: articles.get_page(1, 0), "size"),
        (lambda: articles.get_page(1, 10_001), "size"),
        (lambda: articles.get_page(2**31, 100), "page"),
        (lambda: articles.get_slice(size=-1), "size"),
        (lambda: articles.all(limit=-1), "limit"),
    ],
)
async def test_bad_paging_input_is_rejected_before_sql(
    db: DatabaseSessionFactory, call: object, match: str
) -> None:
    with statements(db.engine) as seen, pytest.raises(PaginationError, match=match):
        await call()  # type: ignore[operator]
    assert seen == []


@pytest.mark.parametrize("chunk_size", [0, -1, 10_001, True, 2.0])
async def test_bad_stream_chunk_size_is_rejected(
    db: DatabaseSessionFactory, chunk_size: object
) -> None:
    with pytest.raises(PaginationError, match="chunk_size"):
        articles.stream(chunk_size=chunk_size)  # type: ignore[arg-type]


async def test_get_all_filters_with_a_query(db: DatabaseSessionFactory) -> None:
    await seed(3)
    popular = articles.where(Article.views > 0)
    assert titles(list(await articles.get_all(0, 10, popular))) == [
        "user00 post 1",
        "user01 post 1",
        "user02 post 1",
    ]
    assert titles(list(await articles.get_all(1, 1, query=popular))) == ["user01 post 1"]


class Accounts(AccountRepo):
    async def delete_by_owner(self, owner: str) -> int: ...


async def test_soft_delete_of_a_versioned_entity_bumps_the_version(
    db: DatabaseSessionFactory,
) -> None:
    accounts = Accounts()
    (ann, _bob) = await accounts.insert_all([Account(owner="ann"), Account(owner="bob")])

    @transactional
    async def delete_while_loaded() -> int:
        loaded = await accounts.get_by_id(ann.id)  # in the session during the bulk UPDATE
        assert loaded is not None and loaded.version == 1
        deleted = await accounts.delete_by_owner("ann")
        # the instance in the session was updated or expired: never left stale
        assert await loaded.awaitable_attrs.deleted_at is not None
        assert await loaded.awaitable_attrs.version == 2
        return deleted

    assert await delete_while_loaded() == 1
    assert await accounts.delete_by_owner("ann") == 0
    gone = await accounts.only_deleted().all()
    assert [(a.owner, a.version) for a in gone] == [("ann", 2)]
    assert [a.owner for a in await accounts.all()] == ["bob"]
