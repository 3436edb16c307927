"""The Redis backend's operations: read, conditional write, evictions and load leases.

This layer turns the :class:`~viveka_db.cache.backend.CacheBackend` operations into
commands of the wire layout (:mod:`~viveka_db.cache.redis_wire`), each sent through the
command gate (:mod:`~viveka_db.cache.redis_gate`), and hands evictions that did not get
through to the pending-eviction queue (:mod:`~viveka_db.cache.redis_evictions`), whose
prefixes it then refuses to serve or write. It knows nothing of process memory: the
near-cache wraps it from above (:mod:`~viveka_db.cache.near_layer`), through
:meth:`RedisStore.read_with_ttl` and :meth:`RedisStore.write_stamped`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from viveka_db.cache.backend import CacheBackend, CacheCounters, Lookup, Stamp
from viveka_db.cache.redis_evictions import PendingEvictions
from viveka_db.cache.redis_gate import FAILED, CommandGate
from viveka_db.cache.redis_wire import (
    GENERATION_TOKEN,
    KeyLayout,
    Scripts,
    channel_for,
    decode_entry,
    fresh_generation,
    new_token,
    tombstone,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisStore"]


class RedisStore(CacheBackend):
    """Redis without a near-cache; ``RedisCache`` assembles it (see its options)."""

    remote = True

    def __init__(
        self,
        client: Redis | RedisCluster,
        owner: object,
        counters: CacheCounters,
        *,
        layout: KeyLayout,
        gate: CommandGate,
        default_ttl: float,
        tombstone_ttl: float,
        lease_wait: float,
        eviction_retry_interval: float,
        eviction_journal: str | os.PathLike[str] | None,
    ) -> None:
        super().__init__()
        self.counters = counters
        self.namespace = layout.namespace
        self.default_ttl = default_ttl
        self.tombstone_ttl = tombstone_ttl
        self.lease_wait = lease_wait
        self._client = client
        self._layout = layout
        self._base = layout.base
        self._gate = gate
        self._scripts = Scripts(client)
        self._channel = channel_for(layout.namespace)
        self.pending = PendingEvictions(
            owner, self._probe, retry_interval=eviction_retry_interval, journal=eviction_journal
        )

    async def read(self, prefix: str, key: str) -> Lookup:
        pending = self.pending
        if pending.prefixes:
            pending.ensure_flusher()
            if prefix in pending.prefixes:
                return None, None  # an eviction of it is not delivered yet: never serve it
        gate = self._gate
        if not gate.allow():
            return None, None
        base = self._base(prefix)
        found = await gate.fetch("read", "MGET", base + GENERATION_TOKEN, base + key, read=True)
        if found is FAILED:
            return None, None
        generation, raw = cast("list[bytes | None]", found)
        return decode_entry(generation, raw)

    async def read_with_ttl(self, prefix: str, key: str) -> tuple[Lookup, float | None]:
        """:meth:`read`, plus the entry's remaining TTL in seconds (one script, one trip)."""
        pending = self.pending
        if pending.prefixes:
            pending.ensure_flusher()
            if prefix in pending.prefixes:
                return (None, None), None
        gate = self._gate
        if not gate.allow():
            return (None, None), None
        base = self._base(prefix)
        found = await gate.run(
            "read",
            "EVALSHA",
            self._scripts.near_read,
            keys=[base + GENERATION_TOKEN, base + key],
            client=self._client,
            read=True,
        )
        if found is FAILED:
            return (None, None), None
        generation, raw, pttl = cast("list[Any]", found)
        ttl = int(pttl) / 1000 if isinstance(pttl, int) and pttl >= 0 else None
        return decode_entry(generation, raw), ttl

    async def write(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> bool:
        return await self.write_stamped(prefix, key, payload, ttl, stamp) is not None

    async def write_stamped(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> Stamp | None:
        """:meth:`write`, returning the stamp the stored entry carries (``None``: not stored)."""
        if not isinstance(stamp, tuple) or not self._gate.breaker.allow():
            self.counters.short_circuits += 1
            return None
        if prefix in self.pending.prefixes:
            return None
        generation, token = cast("tuple[bytes, bytes]", stamp)
        ttl_ms = max(1, int((self.default_ttl if ttl is None else ttl) * 1000))
        base = self._base(prefix)
        written = new_token()
        fresh = fresh_generation()
        stored = await self._gate.run(
            "write",
            "EVALSHA",
            self._scripts.put,
            keys=[base + GENERATION_TOKEN, base + key],
            args=[generation, token, payload, ttl_ms, written, fresh],
            client=self._client,
        )
        if stored is FAILED:
            return None
        if stored:
            self.counters.writes += 1
            return (generation or fresh, written.encode())
        self.counters.rejected_writes += 1
        return None

    async def evict_key(self, prefix: str, key: str) -> None:
        self.counters.evictions += 1
        if prefix in self.pending.prefixes or not await self._evict(prefix, key):
            self.pending.remember(prefix, key)

    async def evict_prefix(self, prefix: str) -> None:
        self.counters.evictions += 1
        if prefix in self.pending.prefixes or not await self._evict(prefix, None):
            self.pending.remember(prefix, None)

    async def _probe(self, prefix: str, key: str | None) -> bool:
        """Deliver a queued eviction, even while the breaker is open (it is the probe)."""
        return await self._evict(prefix, key, probe=True)

    async def _evict(self, prefix: str, key: str | None, *, probe: bool = False) -> bool:
        gate = self._gate
        if not probe and not gate.allow():
            return False
        if key is None:
            done = await gate.run(
                "eviction",
                "EVALSHA",
                self._scripts.evict_prefix,
                keys=[self._layout.generation(prefix)],
                args=[fresh_generation(), self._channel],
                client=self._client,
            )
        else:
            ttl_ms = max(1, int(self.tombstone_ttl * 1000))
            done = await gate.run(
                "eviction",
                "EVALSHA",
                self._scripts.evict_key,
                keys=[self._layout.entry(prefix, key)],
                args=[tombstone(), ttl_ms, self._channel],
                client=self._client,
            )
        return done is not FAILED

    async def acquire_lease(self, prefix: str, key: str) -> bool | None:
        if not self._gate.breaker.allow():
            return None
        ttl_ms = max(1000, int(self.lease_wait * 10_000))  # outlives slow loads, not a crash
        lease = self._layout.lease(prefix, key)
        taken = await self._gate.run(
            "lease", "SET", self._client.set, lease, b"1", nx=True, px=ttl_ms
        )
        return None if taken is FAILED else bool(taken)

    async def release_lease(self, prefix: str, key: str) -> None:
        await self._gate.run("lease", "DEL", self._client.delete, self._layout.lease(prefix, key))

    async def close(self) -> None:
        self.pending.stop()
