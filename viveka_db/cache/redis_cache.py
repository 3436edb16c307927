"""``RedisCache``: the shared backend, on ``redis.asyncio``, that never takes a service down.

This module only assembles the layers of the Redis cache from the options users pass; each
layer is a module of its own, and the import-linter contract ``cache-layers``
(``pyproject.toml``) keeps every one from importing a layer above it:

1. :mod:`~viveka_db.cache.redis_wire`: the key layout and the Lua scripts (what Redis holds);
2. :mod:`~viveka_db.cache.redis_gate`: per-command timeout, in-flight bound and circuit
   breaker, so an outage costs each call little and raises nothing (fail-open); reads
   go out on connections it keeps between commands
   (:mod:`~viveka_db.cache.redis_connections`);
3. :mod:`~viveka_db.cache.redis_evictions`: evictions that failed, kept (and journalled),
   retried in the background; their prefixes are not served meanwhile;
4. :mod:`~viveka_db.cache.redis_store`: the backend operations on top of those;
5. :mod:`~viveka_db.cache.near_layer` (``near=True``): hits served from process memory,
   wrapped around the backend and kept current by the invalidation listener
   (:mod:`~viveka_db.cache.invalidation`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from viveka_db.cache.backend import CacheBackend, Lookup, Stamp
from viveka_db.cache.invalidation import InvalidationListener
from viveka_db.cache.near import NearCache
from viveka_db.cache.near_layer import NearCachedBackend
from viveka_db.cache.redis_clients import client_from_url
from viveka_db.cache.redis_gate import CommandGate
from viveka_db.cache.redis_store import RedisStore
from viveka_db.cache.redis_wire import KeyLayout
from viveka_db.config.urls import mask_url
from viveka_db.telemetry.cache import cache_span

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisCache"]


class RedisCache(CacheBackend):
    """Redis behind the cache decorators.

    ``RedisCache(url="redis://:password@host:6379/0")`` (``rediss://`` for TLS,
    ``redis+cluster://`` and ``redis+sentinel://`` for the topologies of
    :mod:`viveka_db.cache.redis_clients`; extra keyword arguments such as ``ssl_ca_certs``
    go to the redis-py client), or ``RedisCache(client=...)`` to use a client you built.
    ``socket_timeout`` bounds each command; after ``failure_threshold`` consecutive
    failures the backend is skipped for ``recovery_time`` seconds, then probed again. At
    most ``max_connections`` commands are in flight; more wait up to ``pool_timeout``.
    ``lease_wait`` > 0 turns on a cross-process load lease: one process loads a missing key
    while the others wait up to that long for its value, then load themselves.
    Evictions that fail are retried every ``eviction_retry_interval`` seconds in the
    background until Redis takes them; with ``eviction_journal`` (a file path) they also
    survive a restart (see :mod:`viveka_db.cache.eviction_journal`).

    ``near=True`` adds a near-cache of up to ``near_max_entries`` entries, each served for
    at most ``near_ttl`` seconds from process memory, and invalidated by evictions of any
    process through Redis pub/sub (:mod:`~viveka_db.cache.near`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | RedisCluster | None = None,
        namespace: str = "viveka",
        default_ttl: float = 3600.0,
        socket_timeout: float = 0.25,
        connect_timeout: float | None = None,
        failure_threshold: int = 3,
        recovery_time: float = 5.0,
        tombstone_ttl: float = 300.0,
        max_connections: int = 64,
        pool_timeout: float = 2.0,
        eviction_retry_interval: float = 0.5,
        eviction_journal: str | os.PathLike[str] | None = None,
        lease_wait: float = 0.0,
        near: bool = False,
        near_max_entries: int = 10_000,
        near_ttl: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__()
        if (url is None) == (client is None):
            raise ValueError("RedisCache needs exactly one of url=... or client=...")
        layout = KeyLayout(namespace)
        self.namespace = namespace
        self.default_ttl = float(default_ttl)
        self.tombstone_ttl = float(tombstone_ttl)
        self.lease_wait = float(lease_wait)
        self._url = mask_url(url) if url is not None else repr(client)
        if client is None:
            assert url is not None
            client = client_from_url(
                url,
                connect_timeout=connect_timeout or socket_timeout,
                max_connections=max_connections,
                options=options,
            )
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._layout = layout
        self._gate = CommandGate(
            client,
            self,
            self.counters,
            timeout=socket_timeout,
            max_in_flight=max_connections,
            pool_timeout=pool_timeout,
            failure_threshold=failure_threshold,
            recovery_time=recovery_time,
        )
        self._store = RedisStore(
            client,
            self,
            self.counters,
            layout=layout,
            gate=self._gate,
            default_ttl=self.default_ttl,
            tombstone_ttl=self.tombstone_ttl,
            lease_wait=self.lease_wait,
            eviction_retry_interval=eviction_retry_interval,
            eviction_journal=eviction_journal,
        )
        self._near: NearCache | None = None
        self._listener: InvalidationListener | None = None
        self._front: RedisStore | NearCachedBackend = self._store
        self.stable_payloads = near  # hits then return the payload object the near-cache holds
        if near:
            self._near = NearCache(max_entries=near_max_entries, ttl=near_ttl)
            self._listener = InvalidationListener(client, namespace, self._near)
            self._front = NearCachedBackend(
                self._store, self._near, self._listener, self.counters, default_ttl=self.default_ttl
            )

    @property
    def span_attributes(self) -> dict[str, Any]:
        """The server attributes of this backend's spans (``db.system.name = "redis"``...)."""
        return self._gate.span_attributes

    @property
    def near(self) -> NearCache | None:
        """The near-cache (``near=True``), else ``None``."""
        return self._near

    @property
    def listener(self) -> InvalidationListener | None:
        """What keeps the near-cache subscribed to other processes' evictions."""
        return self._listener

    remote = True

    async def ping(self) -> None:
        with cache_span("PING", self.span_attributes):
            await self._client.ping()  # pyright: ignore[reportUnknownMemberType]

    def __repr__(self) -> str:
        return f"RedisCache({self._url!r}, namespace={self.namespace!r})"

    @property
    def client(self) -> Redis | RedisCluster:
        return self._client

    @property
    def available(self) -> bool:
        """``False`` while the circuit breaker is open (Redis considered down)."""
        return not self._gate.breaker.is_open

    @property
    def eviction_retry_interval(self) -> float:
        """Seconds between deliveries of evictions that failed (see ``pending_evictions``)."""
        return self._store.pending.retry_interval

    @eviction_retry_interval.setter
    def eviction_retry_interval(self, seconds: float) -> None:
        self._store.pending.retry_interval = seconds

    @property
    def pending_evictions(self) -> int:
        """Evictions not yet delivered to Redis (retried in the background until they are)."""
        return len(self._store.pending)

    def key_for(self, prefix: str, key: str) -> str:
        """The Redis key of one entry (for tools and tests)."""
        return self._layout.entry(prefix, key)

    def generation_key(self, prefix: str) -> str:
        return self._layout.generation(prefix)

    # -- operations: the front layer (the near-cache, or Redis itself) ------------------

    def peek(self, prefix: str, key: str) -> bytes | None:
        return self._front.peek(prefix, key)

    async def read(self, prefix: str, key: str) -> Lookup:
        return await self._front.read(prefix, key)

    async def write(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> bool:
        return await self._front.write(prefix, key, payload, ttl, stamp)

    async def evict_key(self, prefix: str, key: str) -> None:
        await self._front.evict_key(prefix, key)

    async def evict_prefix(self, prefix: str) -> None:
        await self._front.evict_prefix(prefix)

    async def acquire_lease(self, prefix: str, key: str) -> bool | None:
        return await self._front.acquire_lease(prefix, key)

    async def release_lease(self, prefix: str, key: str) -> None:
        await self._front.release_lease(prefix, key)

    async def close(self) -> None:
        await self._front.close()
        await self._gate.close()
        if self._owns_client:
            await self._client.aclose()
