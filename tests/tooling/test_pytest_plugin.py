"""The ``viveka_db`` pytest plugin, run in a pytest of its own (as a user project would)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.tooling.cli import SQLITE_AND_POSTGRESQL, cli_env

USER_TESTS = """
import asyncio

import pytest
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DbRepo, Propagation, VivekaDbBase, cacheable, current_session, entity, table, transactional,
)


@entity
@table("tool_plugin_items")
class Item(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


class ItemService:
    def __init__(self):
        self.repo = DbRepo(Item)

    @transactional
    async def add(self, name):
        await self.repo.insert_all([Item(name=name)])
        return current_session()

    @transactional(propagation=Propagation.NESTED)
    async def add_then_fail(self, name):
        await self.repo.insert_all([Item(name=name)])
        raise ValueError("undo me")

    @cacheable(key_prefix="tool_plugin_item")
    async def name_of(self, item_id):
        item = await self.repo.get_by_id(item_id)
        return item.name


@pytest.mark.asyncio
@pytest.mark.parametrize("round", [1, 2, 3])
async def test_writes_are_rolled_back_after_each_test(db_session, round):
    service = ItemService()
    assert await service.repo.count() == 0  # nothing left over from the previous round
    used = await service.add(f"item {round}")
    assert used is db_session  # @transactional joined the test's transaction
    assert current_session() is db_session
    await db_session.commit()  # only releases a savepoint
    assert await service.repo.count() == 1
    with pytest.raises(ValueError):
        await service.add_then_fail("nested")
    assert await service.repo.count() == 1


@pytest.mark.asyncio
async def test_binding_is_visible_in_tasks_of_the_test(db_session):
    service = ItemService()

    async def in_task():
        return current_session()

    assert await asyncio.create_task(in_task()) is db_session
    assert await service.repo.count() == 0


@pytest.mark.asyncio
async def test_memory_cache_fixture(db_session, memory_cache):
    service = ItemService()
    await service.add("cached")
    [item] = await service.repo.get_all()
    assert await service.name_of(item.id) == "cached"
    assert memory_cache.stats().writes == 0  # deferred until the transaction commits
    await db_session.commit()  # a savepoint release; runs the after-commit hooks
    assert await service.name_of(item.id) == "cached"
    stats = memory_cache.stats()
    assert (stats.misses, stats.hits, stats.writes) == (1, 1, 1)


def test_url_fixture(viveka_db_url):
    assert viveka_db_url == "{url}"
"""


async def _count(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(text("SELECT COUNT(*) FROM tool_plugin_items"))).scalar_one()
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "backend",
    SQLITE_AND_POSTGRESQL,
    indirect=True,
)
def test_db_session_rolls_back_every_test(backend: str, backend_url: str, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plugin.db'}" if backend == "sqlite" else backend_url
    (tmp_path / "test_user_project.py").write_text(USER_TESTS.replace("{url}", url))
    # strict mode (pytest-asyncio's default), no ini of ours: like a user project
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--viveka-db-url={url}"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
    assert asyncio.run(_count(url)) == 0  # the table exists and nothing was left behind
