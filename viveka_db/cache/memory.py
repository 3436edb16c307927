"""``MemoryCache``: the in-process backend, the embedded default when no Redis is configured.

Entries are the same serialised bytes Redis would hold, so a hit hands out a fresh copy
(callers cannot mutate what the cache holds) and behaviour is identical across backends.
Prefix eviction bumps a per-prefix generation (O(1)); entries of old generations are never
returned and leave by TTL or by least-recently-used eviction once ``max_entries`` is reached.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable

from viveka_db.cache.backend import CacheBackend, Lookup, Stamp

__all__ = ["MemoryCache"]


class _Entry:
    __slots__ = ("expires", "generation", "payload", "token")

    def __init__(self, generation: int, token: int, expires: float, payload: bytes | None) -> None:
        self.generation = generation
        self.token = token
        self.expires = expires
        self.payload = payload
        """``None`` marks a tombstone: a single-key eviction that refuses older writes."""


class MemoryCache(CacheBackend):
    """A bounded, TTL-aware LRU cache living in this process.

    ``max_entries`` bounds memory (least recently used entries go first);
    ``tombstone_ttl`` is how long a single-key eviction keeps refusing writes that were
    read before it, which must exceed the longest load that could race with it.
    """

    stable_payloads = True

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        default_ttl: float = 3600.0,
        namespace: str = "viveka",
        tombstone_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries!r}")
        self.max_entries = max_entries
        self.default_ttl = float(default_ttl)
        self.namespace = namespace
        self.tombstone_ttl = float(tombstone_ttl)
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._tokens = itertools.count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries}, entries={len(self._entries)})"

    def peek(self, prefix: str, key: str) -> bytes | None:
        return self._lookup(prefix, key)[0]

    async def read(self, prefix: str, key: str) -> Lookup:
        return self._lookup(prefix, key)

    def _lookup(self, prefix: str, key: str) -> Lookup:
        generation = self._generations.get(prefix, 0)
        entry = self._entries.get((prefix, key))
        if entry is None:
            return None, (generation, 0)
        if entry.expires <= self._clock():
            del self._entries[(prefix, key)]
            return None, (generation, 0)
        if entry.payload is not None and entry.generation == generation:
            self._entries.move_to_end((prefix, key))
            return entry.payload, (generation, entry.token)
        return None, (generation, entry.token)

    async def write(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> bool:
        generation = self._generations.get(prefix, 0)
        entry = self._entries.get((prefix, key))
        now = self._clock()
        token = 0 if entry is None or entry.expires <= now else entry.token
        if stamp != (generation, token):
            self.counters.rejected_writes += 1
            return False
        expires = now + (self.default_ttl if ttl is None else ttl)
        self._store((prefix, key), _Entry(generation, next(self._tokens), expires, payload))
        self.counters.writes += 1
        return True

    async def evict_key(self, prefix: str, key: str) -> None:
        generation = self._generations.get(prefix, 0)
        expires = self._clock() + self.tombstone_ttl
        self._store((prefix, key), _Entry(generation, next(self._tokens), expires, None))
        self.counters.evictions += 1

    async def evict_prefix(self, prefix: str) -> None:
        self._generations[prefix] = self._generations.get(prefix, 0) + 1
        self.counters.evictions += 1

    def clear(self) -> None:
        """Forget every entry (for tests and tools; decorated code evicts by prefix or key)."""
        self._entries.clear()

    def _store(self, full_key: tuple[str, str], entry: _Entry) -> None:
        entries = self._entries
        entries[full_key] = entry
        entries.move_to_end(full_key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
            self.counters.capacity_evictions += 1
