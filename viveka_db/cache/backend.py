"""The small interface every cache backend implements, and the counters they share.

A backend stores opaque bytes under ``(prefix, key)`` and knows three things the
decorators rely on: a lookup also returns a *stamp* (what the entry and its prefix looked
like when read), a write is conditional on that stamp (so a value read before a concurrent
eviction can never land after it), and evicting a whole prefix is O(1).
Serialisation, key building and transactions live above this layer (``aside.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["CacheBackend", "CacheCounters", "CacheStats", "Lookup", "Stamp"]

Stamp = Hashable
"""Opaque state observed by a read; a later conditional write succeeds only if it still holds."""

Lookup = tuple["bytes | None", "Stamp | None"]
"""``(payload, stamp)``: payload ``None`` is a miss; stamp ``None`` means nothing may be written."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a backend's counters (``get_cache().stats()``)."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    """Backend failures (timeouts, refused connections), corrupt payloads, unserialisable values."""
    evictions: int = 0
    """Explicit evictions performed (a whole prefix or one key counts once)."""
    writes: int = 0
    rejected_writes: int = 0
    """Conditional writes refused because the entry or its prefix changed since the read."""
    bypasses: int = 0
    """Reads that skipped the cache because the transaction evicted that prefix or key."""
    capacity_evictions: int = 0
    """Entries dropped to stay within a bounded backend's size (``MemoryCache``)."""
    short_circuits: int = 0
    """Calls not sent to the backend because its circuit breaker was open."""
    pool_timeouts: int = 0
    """Calls that found every connection busy for ``pool_timeout`` (not a backend failure)."""


class CacheCounters:
    """Mutable counters, bumped on hot paths without locks (asyncio runs one task at a time)."""

    __slots__ = (
        "bypasses",
        "capacity_evictions",
        "errors",
        "evictions",
        "hits",
        "misses",
        "pool_timeouts",
        "rejected_writes",
        "short_circuits",
        "writes",
    )

    def __init__(self) -> None:
        self.hits = self.misses = self.errors = self.evictions = 0
        self.writes = self.rejected_writes = self.bypasses = 0
        self.capacity_evictions = self.short_circuits = self.pool_timeouts = 0

    def snapshot(self) -> CacheStats:
        return CacheStats(**{name: getattr(self, name) for name in self.__slots__})


class CacheBackend(ABC):
    """Where cached payloads live. Implementations fail open: they log, count and return a miss.

    ``read`` returns ``(payload, stamp)``; ``write`` stores ``payload`` only if the state
    ``stamp`` describes still holds (the prefix was not evicted, the entry was not evicted
    or rewritten since), and reports whether it did.
    """

    namespace: str = "viveka"
    default_ttl: float = 3600.0
    stable_payloads: bool = False
    """Whether ``read`` may return the very ``bytes`` object an earlier read returned (a
    store in process memory): decoding may then reuse work (:func:`~viveka_db.cache.
    serializer.loads`)."""

    def __init__(self) -> None:
        self.counters = CacheCounters()

    @abstractmethod
    async def read(self, prefix: str, key: str) -> Lookup:
        """The payload stored under ``(prefix, key)`` (``None`` on a miss) and the stamp seen."""

    def peek(self, prefix: str, key: str) -> bytes | None:
        """The payload held *in this process* for ``(prefix, key)``, without waiting for
        anything; ``None`` when there is none (then ``read`` asks the store).

        What ``read`` would return as a hit from process memory (an in-process cache, a
        near-cache): ``@cacheable`` takes it before any single-flight bookkeeping, which
        only a read that waits needs. Nothing in process memory by default.
        """
        return None

    @abstractmethod
    async def write(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> bool:
        """Store ``payload`` for ``ttl`` seconds (``None``: ``default_ttl``) if ``stamp`` holds."""

    @abstractmethod
    async def evict_key(self, prefix: str, key: str) -> None:
        """Remove one entry, and refuse writes that were read before this eviction."""

    @abstractmethod
    async def evict_prefix(self, prefix: str) -> None:
        """Make every entry under ``prefix`` unreachable, in O(1) work."""

    lease_wait: float = 0.0
    """Seconds a miss waits for another process that holds the key's load lease (0: off)."""

    async def acquire_lease(self, prefix: str, key: str) -> bool | None:
        """Take the cross-process lease to load ``(prefix, key)``.

        ``True``: taken (release it); ``False``: another process holds it; ``None``: this
        backend has no leases or cannot tell (load without one).
        """
        return None

    async def release_lease(self, prefix: str, key: str) -> None:  # noqa: B027 - optional
        """Give the lease back (it also expires by itself)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections (a no-op for in-process backends)."""

    remote: bool = False
    """Whether the backend lives on a server (then :meth:`ping` makes a round trip)."""

    async def ping(self) -> None:  # noqa: B027 - in-process backends are always reachable
        """Raise if the backend cannot be reached right now (health checks).

        Unlike the cache operations this does not fail open, and it ignores the circuit
        breaker: it reports what the server answers now.
        """

    def stats(self) -> CacheStats:
        return self.counters.snapshot()
