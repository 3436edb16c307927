"""Repositories: the generic methods of ``DbRepo`` plus a few declared ones."""

from __future__ import annotations

from examples.shop.entities import Order, OrderStatus, User
from viveka_db import DbRepo, cache_evict, cacheable, repository, transactional


@repository
class UserRepo(DbRepo[User]):
    # derived from its name: WHERE email = :email (the body must be just `...`)
    async def find_by_email(self, email: str) -> User | None: ...

    @cacheable(key_prefix="shop_user", ttl=300)
    async def get(self, user_id: int) -> User | None:
        """Cache-aside read; the cached copy comes back as a detached ``User``."""
        return await self.get_by_id(user_id)

    @transactional
    @cache_evict(key_prefix="shop_user")
    async def rename(self, user_id: int, name: str) -> User | None:
        """Change the name; the cache entries go once the transaction commits."""
        user = await self.get_by_id(user_id)
        if user is not None:
            user.name = name
            await self.db.flush()
        return user


@repository
class OrderRepo(DbRepo[Order]):
    # derived from their names
    async def find_all_by_user_id_order_by_id(self, user_id: int) -> list[Order]: ...  # type: ignore[empty-body]

    async def count_by_status(self, status: OrderStatus) -> int: ...  # type: ignore[empty-body]
