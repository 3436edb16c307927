"""``stream``: every row once, in order, with bounded memory, in and out of transactions."""

from __future__ import annotations

import contextlib
import gc
import tracemalloc

import pytest

from tests.repository.models import ItemRepo
from tests.repository.rel_models import Article, ArticleRepo, seed
from viveka_db import DatabaseSessionFactory, LazyLoadError, current_session, transactional

articles = ArticleRepo()
items = ItemRepo()


async def test_stream_outside_a_transaction_yields_detached_entities(
    db: DatabaseSessionFactory,
) -> None:
    seeded = await seed(5)
    streamed = [a async for a in articles.stream(chunk_size=3, load=[Article.author])]
    assert [a.id for a in streamed] == [a.id for a in seeded]
    assert streamed[0].author.username == "user00"  # loaded per chunk
    with pytest.raises(LazyLoadError):
        _ = streamed[0].tags


async def test_stream_of_a_query_keeps_its_order(db: DatabaseSessionFactory) -> None:
    await seed(4)
    query = articles.where(Article.views > 0).order_by(Article.title.desc())
    titles = [a.title async for a in articles.stream(query, chunk_size=2)]
    assert titles == ["user03 post 1", "user02 post 1", "user01 post 1", "user00 post 1"]
    limited = [a.title async for a in articles.stream(query.limit(3).offset(1), chunk_size=2)]
    assert limited == ["user02 post 1", "user01 post 1", "user00 post 1"]


async def test_stream_inside_a_transaction_sees_its_writes_and_allows_queries(
    db: DatabaseSessionFactory,
) -> None:
    await seed(3)

    @transactional
    @transactional
    async def rename() -> list[tuple[str, int]]:
        first = await articles.first()
        assert first is not None
        first.title = "renamed"
        await current_session().flush()
        seen: list[tuple[str, int]] = []
        async for article in articles.stream(chunk_size=2, load=[Article.tags]):
            count = await articles.count()  # another query in the loop body
            seen.append((article.title, count + len(article.tags)))
        return seen

    seen = await rename()
    assert seen[0] == ("renamed", 6 + 2)
    assert len(seen) == 6


async def test_stopping_early_releases_the_connection(db: DatabaseSessionFactory) -> None:
    await seed(3)
    for _ in range(3 * db.engine.pool.size() + 1):  # more than the pool if leaked
        async with contextlib.aclosing(articles.stream(chunk_size=2)) as stream:
            async for _article in stream:
                break
    assert db.engine.pool.checkedout() == 0


ROWS = 100_000


async def test_streaming_100k_rows_keeps_memory_flat(db: DatabaseSessionFactory) -> None:
    await items.insert_all(
        [{"sku": f"sku{i:06d}", "shop": "main", "qty": i, "note": "x" * 40} for i in range(ROWS)]
    )
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        total = count = 0
        async for item in items.stream(chunk_size=1000):
            total += item.qty
            count += 1
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert count == ROWS and total == ROWS * (ROWS - 1) // 2
    print(f"\nstream of {ROWS} rows: peak {peak / 2**20:.1f} MiB above baseline")
    # 100,000 entities held at once take well over 100 MiB; a stream holds one chunk
    assert peak < 25 * 2**20, f"peak {peak / 2**20:.1f} MiB"
