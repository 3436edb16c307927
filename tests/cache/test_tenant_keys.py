"""Cached results of tenant-scoped reads are kept per tenant (near-cache included)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tenancy.models import Note, NoteRepo
from viveka_db import (
    DatabaseSessionFactory,
    all_tenants,
    cache_evict,
    cacheable,
    tenant,
)
from viveka_db.cache.backend import CacheBackend
from viveka_db.cache.keys import KeyBuilder


class NoteService:
    def __init__(self) -> None:
        self.repo = NoteRepo()
        self.loads = 0

    @cacheable("ten-note-title")
    async def title_of(self, note_id: int) -> str | None:
        self.loads += 1
        note = await self.repo.get_by_id(note_id)
        return None if note is None else note.title

    @cacheable("ten-note-count")
    async def count(self) -> int:
        self.loads += 1
        return await self.repo.count()

    @cache_evict("ten-note-count", key=lambda: ())
    async def forget_count(self) -> None:
        return None


async def test_a_cached_read_under_a_then_b_returns_each_tenants_own_value(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = NoteRepo()
    with tenant("a"):
        await repo.save_all([Note(title="a1"), Note(title="a2")])
    with tenant("b"):
        await repo.save_all([Note(title="b1")])
    service = NoteService()
    for _ in range(2):  # the second round is served by the cache
        with tenant("a"):
            assert await service.count() == 2
        with tenant("b"):
            assert await service.count() == 1
        with all_tenants():
            assert await service.count() == 3
    assert service.loads == 3
    with tenant("a"):
        await service.forget_count()  # evicts a's entry only
        assert await service.count() == 2
    assert service.loads == 4
    with tenant("b"):
        assert await service.count() == 1
    assert service.loads == 4


def _key(builder: KeyBuilder, *args: Any) -> str:
    return builder.build((object(), *args), {})


def test_keys_carry_the_tenant_and_never_collide_with_argument_keys() -> None:
    async def get(self: object, value: object) -> None: ...

    builder = KeyBuilder(get)
    plain = _key(builder, 1)
    with tenant("a"):
        a = _key(builder, 1)
    with tenant("b"):
        b = _key(builder, 1)
    with tenant(7):
        seven = _key(builder, 1)
    with all_tenants():
        every = _key(builder, 1)
    assert len({plain, a, b, seven, every}) == 5
    assert (plain, a, every) == ("1", "~ga:1", "~G:1")
    # an argument that looks like a tenant prefix is encoded differently
    assert _key(builder, "~ga:1") not in {a, b}


@pytest.mark.parametrize("tid", ["a:b", "", " "])
def test_a_tenant_with_a_separator_is_encoded_and_blank_ones_are_refused(tid: str) -> None:
    async def get(self: object, value: object) -> None: ...

    builder = KeyBuilder(get)
    if not tid.strip():
        with pytest.raises(ValueError, match="blank"), tenant(tid):
            pass
        return
    with tenant(tid):
        assert _key(builder, 1) == "~ga%3Ab:1"
