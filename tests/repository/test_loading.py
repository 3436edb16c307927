"""``load=`` on every read, ``default_load``, and ``LazyLoadError`` for unloaded relationships."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.orm import selectinload
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.repository.rel_models import Article, ArticleRepo, AuthorRepo, seed
from tests.sql import statements
from viveka_db import (
    DatabaseSessionFactory,
    DerivedQueryError,
    LazyLoadError,
    UnknownFieldError,
    transactional,
)
from viveka_db.middleware.db_middleware import DbMiddleware
from viveka_db.repository.loading import LoadSpec


class Articles(ArticleRepo):
    async def find_all_by_views_greater_than_equal(self, views: int) -> list[Article]: ...

    # declaring load= keeps type checkers happy; it is accepted either way
    async def find_by_title(self, title: str, *, load: LoadSpec = None) -> Article | None: ...
    async def count_by_views(self, views: int) -> int: ...


repo = Articles()
LOAD = ["author.profile", Article.tags, Article.comments]


def _touch(articles: list[Article]) -> set[str]:
    """Read every loaded relationship; returns something so nothing is optimised away."""
    seen: set[str] = set()
    for article in articles:
        assert article.author.profile is not None
        seen.add(article.author.profile.bio)
        seen.update(tag.name for tag in article.tags)
        seen.update(comment.body for comment in article.comments)
    return seen


async def _listing(name: str) -> list[Article]:
    """Each read of the repository, asking for the same relationships."""
    first = await repo.first(repo.select().order_by(Article.id), load=LOAD)
    assert first is not None
    match name:
        case "get_all":
            return list(await repo.get_all(0, 100, load=LOAD))
        case "all":
            return await repo.all(load=LOAD)
        case "first":
            return [first]
        case "get_by_id":
            found = await repo.get_by_id(first.id, load=LOAD)
            return [found] if found else []
        case "find_by":
            found = await repo.find_by(title=first.title, load=LOAD)
            return [found] if found else []
        case "find_all_by":
            return await repo.find_all_by(version=1, load=LOAD)
        case "find_by_field":
            found = await repo.find_by_field("title", first.title, load=LOAD)
            return [found] if found else []
        case "find_all_by_field":
            return await repo.find_all_by_field(Article.version, 1, load=LOAD)
        case "get_page":
            return (await repo.get_page(1, 100, load=LOAD)).items
        case "get_slice":
            return (await repo.get_slice(size=100, load=LOAD)).items
        case "stream":
            return [a async for a in repo.stream(chunk_size=7, load=LOAD)]
        case "derived":
            return await repo.find_all_by_views_greater_than_equal(0, load=LOAD)
    raise AssertionError(name)


READS = [
    "get_all",
    "all",
    "first",
    "get_by_id",
    "find_by",
    "find_all_by",
    "find_by_field",
    "find_all_by_field",
    "get_page",
    "get_slice",
    "stream",
    "derived",
]


@pytest.mark.parametrize("read", READS)
async def test_each_read_loads_relationships_without_n_plus_one(
    db: DatabaseSessionFactory, read: str
) -> None:
    await seed(20)  # 20 authors, 40 articles, 80 comments

    @transactional
    async def listing() -> list[Article]:
        found = await _listing(read)
        return found

    with statements(db.engine) as seen:
        articles = await listing()
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    expected = 40 if read not in ("first", "get_by_id", "find_by", "find_by_field") else 1
    assert len(articles) == expected
    assert _touch(articles)  # detached now: everything read was loaded
    # the first() probe (3) + the read: the articles with author and profile joined (1),
    # tags (1), comments (1); get_page may add a COUNT; never one query per article.
    # A stream loads per chunk: 40 rows in chunks of 7 make 6 chunks (on MySQL/MariaDB
    # each chunk is its own keyset SELECT too).
    bound = 3 + 3 * 6 if read == "stream" else 3 + 3 + 1
    assert len(selects) <= bound, seen


async def test_without_load_a_listing_is_one_select_per_relationship_access(
    db: DatabaseSessionFactory,
) -> None:
    """What N+1 costs, for comparison: the same listing touched inside the transaction."""
    await seed(20)

    @transactional
    async def listing(load: Any) -> int:
        total = 0
        for article in await repo.all(load=load):
            author = await article.awaitable_attrs.author
            total += len(await article.awaitable_attrs.tags) + len(author.username)
        return total

    with statements(db.engine) as eager:
        assert await listing([Article.author, Article.tags]) > 0
    with statements(db.engine) as lazy:
        assert await listing([]) > 0
    assert len(eager) == 2
    assert len(lazy) == 1 + 20 + 40  # authors: one per distinct author; tags: one per article


async def test_default_load_applies_and_explicit_load_replaces_it(
    db: DatabaseSessionFactory,
) -> None:
    class WithAuthors(ArticleRepo):
        default_load = (Article.author,)

    await seed(2)
    with_authors = WithAuthors()
    article = await with_authors.first()
    assert article is not None and article.author.username == "user00"
    bare = await with_authors.first(load=())
    assert bare is not None
    with pytest.raises(LazyLoadError):
        _ = bare.author


async def test_loader_option_overrides_the_default_choice(db: DatabaseSessionFactory) -> None:
    await seed(3)
    with statements(db.engine) as seen:
        articles = await repo.all(load=selectinload(Article.author))
    assert len(seen) == 2  # author by SELECT ... IN instead of a JOIN
    assert "JOIN" not in seen[0].upper()
    assert {a.author.username for a in articles} == {"user00", "user01", "user02"}


async def test_bad_load_specs_fail_before_sql(db: DatabaseSessionFactory) -> None:
    with statements(db.engine) as seen:
        with pytest.raises(UnknownFieldError, match="author, comments, tags"):
            await repo.all(load="writer")
        with pytest.raises(UnknownFieldError, match="profile"):
            await repo.all(load="author.avatar")
        with pytest.raises(UnknownFieldError):
            await repo.all(load=Article.title)  # a column, not a relationship
        with pytest.raises(TypeError, match="load="):
            await repo.all(load=42)  # type: ignore[arg-type]
    assert seen == []


def test_default_load_is_checked_when_the_class_is_created() -> None:
    with pytest.raises(DerivedQueryError, match="default_load"):

        class Broken(ArticleRepo):
            default_load = ("autor",)


async def test_detached_entity_raises_lazy_load_error(db: DatabaseSessionFactory) -> None:
    await seed(1)
    article = await repo.first()  # a standalone call: its session is closed afterwards
    assert article is not None
    with pytest.raises(LazyLoadError) as caught:
        _ = article.author
    err = caught.value
    assert err.entity is Article and err.attribute == "author"
    assert "Article.author" in str(err) and "load=[Article.author]" in str(err)
    assert "detached" in str(err)
    with pytest.raises(LazyLoadError, match=r"Author\.articles.*detached"):
        _ = (await AuthorRepo().first()).articles  # type: ignore[union-attr]


async def test_inside_a_transaction_implicit_io_raises_and_awaitable_attrs_works(
    db: DatabaseSessionFactory,
) -> None:
    await seed(1)

    @transactional
    async def handler() -> list[str]:
        article = await repo.first()
        assert article is not None
        with pytest.raises(LazyLoadError, match="awaitable_attrs"):
            _ = article.tags
        tags = await article.awaitable_attrs.tags  # explicit async access still works
        return [t.name for t in tags]

    assert await handler() == ["python", "sql"]


async def test_unloaded_relationship_in_a_request_is_a_lazy_load_error(
    db: DatabaseSessionFactory,
) -> None:
    await seed(1)
    errors: list[BaseException] = []

    async def article_view(request: Request) -> Response:
        article = await repo.first()
        assert article is not None
        try:
            return JSONResponse({"author": article.author.username})
        except Exception as exc:
            errors.append(exc)
            raise

    async def loaded_view(request: Request) -> Response:
        article = await repo.first(load=Article.author)
        assert article is not None
        return JSONResponse({"author": article.author.username})

    app = Starlette(routes=[Route("/a", article_view), Route("/b", loaded_view)])
    app.add_middleware(DbMiddleware)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/a")).status_code == 500
        ok = await client.get("/b")
    assert [type(e) for e in errors] == [LazyLoadError]
    assert ok.json() == {"author": "user00"}


async def test_identity_map_instance_gets_its_relationships_loaded(
    db: DatabaseSessionFactory,
) -> None:
    """get_by_id(load=) loads relationships even for an entity already in the session."""
    await seed(1)

    @transactional
    async def both() -> Article:
        plain = await repo.first()
        assert plain is not None
        loaded = await repo.get_by_id(plain.id, load=[Article.tags, Article.author])
        assert loaded is plain
        return plain

    article = await both()
    assert [t.name for t in article.tags] == ["python", "sql"]
    assert article.author.username == "user00"


async def test_load_is_refused_for_column_statements(db: DatabaseSessionFactory) -> None:
    with pytest.raises(TypeError, match="load="):
        await repo.all(repo.select().with_only_columns(Article.id), load=Article.author)


async def test_derived_finders_take_load_and_others_refuse_it(db: DatabaseSessionFactory) -> None:
    await seed(1)
    found = await repo.find_by_title("user00 post 0", load="author")
    assert found is not None and found.author.username == "user00"
    bare = await repo.find_by_title("user00 post 0")
    assert bare is not None
    with pytest.raises(LazyLoadError):
        _ = bare.author
    with pytest.raises(TypeError, match="takes no load="):
        await repo.count_by_views(0, load="author")  # type: ignore[call-arg]


async def test_detached_entities_with_unloaded_relationships_can_be_saved(
    db: DatabaseSessionFactory,
) -> None:
    """merge/save of a detached entity never trips over its unloaded relationships."""
    await seed(1)
    article = await repo.first()
    assert article is not None
    article.title = "edited"
    merged = await repo.update(article)
    assert merged.title == "edited"
    again = await repo.first()
    assert again is not None
    again.views = 99
    saved = await repo.save(again)
    assert saved.views == 99
    fresh = await repo.first(load=[Article.tags, Article.author])
    assert fresh is not None and (fresh.title, fresh.views) == ("edited", 99)
    assert [t.name for t in fresh.tags] == ["python", "sql"]
