"""Fixtures of the shop's tests: the app on a fresh SQLite file, with an in-process cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from examples.shop.app import create_app
from viveka_db import DatabaseSessionFactory, MemoryCache, use_cache
from viveka_db.cache.current import reset


@pytest.fixture
def shop_cache() -> MemoryCache:
    """The in-process cache the shop uses in this test."""
    return MemoryCache()


@pytest.fixture
async def shop_client(tmp_path: Path, shop_cache: MemoryCache) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a freshly started shop (lifespan run, tables created) on SQLite."""
    await DatabaseSessionFactory.close_all()
    use_cache(shop_cache)
    app = create_app({"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"}})
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                yield client
    finally:
        reset()
        await DatabaseSessionFactory.close_all()
