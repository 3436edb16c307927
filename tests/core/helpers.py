"""Small tools shared by the core tests: statement counting and committed-state probes."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.core.models import Item
from viveka_db import current_session


async def add(tag: str) -> None:
    """Add an ``Item`` in the current session and flush it (the write happens now)."""
    current_session().add(Item(tag=tag))
    await current_session().flush()


async def committed_tags(engine: AsyncEngine) -> list[str]:
    """The tags of every committed ``Item``, read on a fresh connection."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(Item.tag).order_by(Item.tag))
        return [str(row[0]) for row in rows]


async def committed_count(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


def checked_out(engine: AsyncEngine) -> int:
    return int(engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


async def wait_until_released(engine: AsyncEngine, limit: float = 5.0) -> int:
    """Wait (bounded) for every pooled connection to come back; returns the count still out."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while checked_out(engine) and loop.time() < end:  # noqa: ASYNC110 (polls the pool)
        await asyncio.sleep(0.01)
    return checked_out(engine)


def slow_sql(backend: str) -> str:
    """A read that runs for many seconds (SQLite has no sleep function: a long count)."""
    if backend == "postgresql":
        return "SELECT pg_sleep(30)"
    if backend == "mariadb":
        return "SELECT SLEEP(30)"
    return (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000) "
        "SELECT count(*) FROM c"
    )
