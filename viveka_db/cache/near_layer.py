"""The near-cache as a layer wrapped around a remote backend.

Kept out of the Redis backend so that each can be read alone: the backend below
(:class:`~viveka_db.cache.redis_store.RedisStore`) never looks at process memory, and
this layer never builds a Redis command. A hit is served from the
:class:`~viveka_db.cache.near.NearCache` without waiting for anything (:meth:`peek`,
which ``@cacheable`` takes before any other bookkeeping); a miss reads the entry together
with its remaining TTL, so no entry outlives its Redis TTL in memory; a write that lands
is kept as written. Every fill carries the store's mark taken before the remote call, so a
reply that straddles an invalidation is dropped. Evictions drop the local copy first, then
go to the backend, whose scripts publish them to every other process's listener
(:mod:`~viveka_db.cache.invalidation`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from viveka_db.cache.backend import CacheBackend, CacheCounters, Lookup, Stamp
from viveka_db.cache.invalidation import InvalidationListener
from viveka_db.cache.near import NearCache

__all__ = ["NearCachedBackend", "NearSource"]


class NearSource(Protocol):
    """What the near layer needs from the backend it wraps."""

    lease_wait: float

    async def read_with_ttl(self, prefix: str, key: str) -> tuple[Lookup, float | None]: ...

    async def write_stamped(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> Stamp | None: ...

    async def evict_key(self, prefix: str, key: str) -> None: ...

    async def evict_prefix(self, prefix: str) -> None: ...

    async def acquire_lease(self, prefix: str, key: str) -> bool | None: ...

    async def release_lease(self, prefix: str, key: str) -> None: ...

    async def close(self) -> None: ...


class NearCachedBackend(CacheBackend):
    """``inner`` with hot entries kept in ``near``, trusted while ``listener`` is subscribed."""

    stable_payloads = True
    """Hits return the payload object the near-cache holds (decoding may reuse work)."""
    remote = True

    def __init__(
        self,
        inner: NearSource,
        near: NearCache,
        listener: InvalidationListener,
        counters: CacheCounters,
        *,
        default_ttl: float,
    ) -> None:
        super().__init__()
        self.counters = counters
        self.inner = inner
        self.near = near
        self.listener = listener
        self.default_ttl = default_ttl
        self.lease_wait = inner.lease_wait

    def peek(self, prefix: str, key: str) -> bytes | None:
        listener = self.listener
        if listener.running_loop is not asyncio.get_running_loop():
            listener.start()
        held = self.near.get(prefix, key)
        return None if held is None else held[0]

    def _held(self, prefix: str, key: str) -> Lookup | None:
        """The near-cache's entry, if it holds one it trusts (starting its listener on this
        event loop first, so that one is being kept trustworthy; :meth:`peek` inlines this
        because it is the whole of a near hit)."""
        listener = self.listener
        if listener.running_loop is not asyncio.get_running_loop():
            listener.start()
        return self.near.get(prefix, key)

    async def read(self, prefix: str, key: str) -> Lookup:
        held = self._held(prefix, key)
        if held is not None:
            return held
        near = self.near
        mark = near.mark(prefix)
        lookup, ttl = await self.inner.read_with_ttl(prefix, key)
        payload, stamp = lookup
        if payload is not None and stamp is not None:
            near.put(prefix, key, payload, stamp, mark, ttl)
        return lookup

    async def write(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> bool:
        near = self.near
        mark = near.mark(prefix)
        written = await self.inner.write_stamped(prefix, key, payload, ttl, stamp)
        if written is None:
            return False
        life = self.default_ttl if ttl is None else ttl
        near.put(prefix, key, payload, written, mark, max(1, int(life * 1000)) / 1000)
        return True

    async def evict_key(self, prefix: str, key: str) -> None:
        self.near.invalidate_key(prefix, key)
        await self.inner.evict_key(prefix, key)

    async def evict_prefix(self, prefix: str) -> None:
        self.near.invalidate_prefix(prefix)
        await self.inner.evict_prefix(prefix)

    async def acquire_lease(self, prefix: str, key: str) -> bool | None:
        return await self.inner.acquire_lease(prefix, key)

    async def release_lease(self, prefix: str, key: str) -> None:
        await self.inner.release_lease(prefix, key)

    async def close(self) -> None:
        await self.listener.stop()
        await self.inner.close()
