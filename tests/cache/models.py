"""Entities and repositories of the cache tests (tables prefixed ``cache_``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DbRepo,
    VivekaDbBase,
    cache_evict,
    cacheable,
    entity,
    table,
    transactional,
)


@entity
@table("cache_users")
class CacheUser(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    balance: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    joined: Mapped[dt.datetime] = mapped_column(
        DateTime(), default=lambda: dt.datetime(2024, 5, 17, 12, 30, 15, 123000)
    )
    ref: Mapped[uuid.UUID] = mapped_column(Uuid(), default=uuid.uuid4)


@entity
@table("cache_docs")
class CacheDoc(VivekaDbBase):
    """An entity with a mutable (JSON) column: its cached copies must never share it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


Hook = Callable[[], Awaitable[None]]


class UserRepo(DbRepo[CacheUser]):
    """The seed README's repository, with hooks the tests use to force interleavings."""

    def __init__(self) -> None:
        super().__init__(CacheUser)
        self.loads = 0
        self.after_load: Hook | None = None

    @transactional
    @cacheable(key_prefix="user", ttl=3600)
    async def get(self, user_id: int) -> CacheUser | None:
        self.loads += 1
        user = await self.get_by_id(user_id)
        if self.after_load is not None:
            await self.after_load()
        return user

    @cacheable(key_prefix="user", ttl=3600)
    async def get_untransacted(self, user_id: int) -> CacheUser | None:
        """Reads in a transaction of its own that has ended when the hook runs."""
        self.loads += 1
        user = await self.get_by_id(user_id)
        if self.after_load is not None:
            await self.after_load()
        return user

    @cacheable(key_prefix="user_outer", ttl=3600)
    @transactional
    async def get_outer(self, user_id: int) -> CacheUser | None:
        """The other stacking order: the cache outside the transaction."""
        self.loads += 1
        return await self.get_by_id(user_id)

    @transactional
    @cache_evict(key_prefix="user")
    async def rename(self, user_id: int, name: str) -> CacheUser:
        user = await self.get_by_id(user_id)
        assert user is not None
        user.name = name
        await self.db.flush()
        return user

    @transactional
    @cache_evict(key_prefix="user", key=lambda user_id, name: user_id)
    async def rename_one(self, user_id: int, name: str) -> CacheUser:
        """Evicts only this user's entry."""
        user = await self.get_by_id(user_id)
        assert user is not None
        user.name = name
        await self.db.flush()
        return user

    @cache_evict(key_prefix="user_outer")
    @transactional
    async def rename_outer(self, user_id: int, name: str) -> None:
        user = await self.get_by_id(user_id)
        assert user is not None
        user.name = name

    @transactional
    @cache_evict(key_prefix="user")
    async def remove(self, user_id: int) -> bool:
        return await self.delete(user_id)


async def gate() -> tuple[asyncio.Event, asyncio.Event, Hook]:
    """A hook that signals ``reached`` and then waits for ``release``."""
    reached, release = asyncio.Event(), asyncio.Event()

    async def hook() -> None:
        reached.set()
        await release.wait()

    return reached, release, hook


def column_values(instance: Any) -> dict[str, Any]:
    return {c.key: getattr(instance, c.key) for c in type(instance).__mapper__.column_attrs}
