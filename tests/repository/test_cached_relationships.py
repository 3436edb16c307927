"""A cached entity keeps the relationships that were loaded (memory cache and Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect

from tests.cache.conftest import dispose_cache, make_cache
from tests.repository.rel_models import Article, ArticleRepo, Author, seed
from tests.sql import statements
from viveka_db import DatabaseSessionFactory, LazyLoadError, cacheable
from viveka_db.cache import current
from viveka_db.cache.backend import CacheBackend
from viveka_db.cache.serializer import MAX_RELATIONSHIP_DEPTH, dumps, loads


class CachedArticles(ArticleRepo):
    @cacheable(key_prefix="rel-article", ttl=60)
    async def article(self, article_id: int) -> Article | None:
        return await self.get_by_id(
            article_id, load=["author.profile", Article.tags, Article.comments]
        )

    @cacheable(key_prefix="rel-article-bare", ttl=60)
    async def bare(self, article_id: int) -> Article | None:
        return await self.get_by_id(article_id)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def any_cache(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    saved = (current._current, current._explicit)  # pyright: ignore[reportPrivateUsage]
    backend = await make_cache(str(request.param), request)
    current.use_cache(backend)
    try:
        yield backend
    finally:
        await dispose_cache(backend)
        current._current, current._explicit = saved  # pyright: ignore[reportPrivateUsage]


async def test_a_cache_hit_keeps_loaded_relationships(
    db: DatabaseSessionFactory, any_cache: CacheBackend
) -> None:
    seeded = await seed(2)
    repo = CachedArticles()
    first = await repo.article(seeded[1].id)
    assert first is not None
    with statements(db.engine) as seen:
        hit = await repo.article(seeded[1].id)
    assert seen == []  # from the cache
    assert hit is not None and hit is not first and inspect(hit).detached
    assert hit.author.username == "user00"
    assert hit.author.profile is not None and hit.author.profile.bio == "bio of user00"
    assert [t.name for t in hit.tags] == ["async", "sql"]
    assert [c.body for c in hit.comments] == [c.body for c in first.comments]
    assert inspect(hit.author).detached
    with pytest.raises(LazyLoadError, match=r"Author\.articles"):
        _ = hit.author.articles  # not loaded when cached


async def test_unloaded_relationships_of_a_cached_entity_raise_lazy_load_error(
    db: DatabaseSessionFactory, any_cache: CacheBackend
) -> None:
    seeded = await seed(1)
    repo = CachedArticles()
    await repo.bare(seeded[0].id)
    hit = await repo.bare(seeded[0].id)
    assert hit is not None and hit.title == "user00 post 0"
    with pytest.raises(LazyLoadError, match=r"Article\.author"):
        _ = hit.author


def test_cycles_are_cut_and_depth_is_bounded() -> None:
    author = Author(id=1, username="ann")
    article = Article(id=2, title="t", views=0, author_id=1, version=1)
    # a fully loaded cycle: article -> author -> articles -> article
    from sqlalchemy.orm.attributes import set_committed_value

    set_committed_value(article, "author", author)
    set_committed_value(author, "articles", [article])
    set_committed_value(author, "profile", None)
    restored = loads(dumps(article))
    assert restored.author.username == "ann"
    assert restored.author.profile is None  # loaded as "no profile": kept
    with pytest.raises(LazyLoadError):
        _ = restored.author.articles  # leads back to the article: cut
    assert MAX_RELATIONSHIP_DEPTH >= 2
