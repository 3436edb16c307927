"""``NullCache``: the backend installed when ``[cache] enabled = false``."""

from __future__ import annotations

from viveka_db.cache.backend import CacheBackend, Lookup, Stamp

__all__ = ["NullCache"]


class NullCache(CacheBackend):
    """Never stores anything, so every decorated call reaches the database."""

    def __init__(self, *, namespace: str = "viveka", default_ttl: float = 3600.0) -> None:
        super().__init__()
        self.namespace = namespace
        self.default_ttl = default_ttl

    async def read(self, prefix: str, key: str) -> Lookup:
        return None, None

    async def write(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> bool:
        return False

    async def evict_key(self, prefix: str, key: str) -> None:
        self.counters.evictions += 1

    async def evict_prefix(self, prefix: str) -> None:
        self.counters.evictions += 1

    def __repr__(self) -> str:
        return "NullCache()"
