"""``RedisCache``: the shared backend, on ``redis.asyncio``, that never takes a service down.

Layout of one prefix ``p`` in namespace ``ns``::

    ns:{p}:~g     the prefix's generation (no TTL)
    ns:{p}:<key>  b"vk1:" + token(16) + generation(20, zero padded) + payload   (TTL)
                  b"vkT:" + token(16)                                          (tombstone)

A hit is one ``MGET`` of the generation and the entry: an entry counts only if it carries
the current generation, so evicting the prefix is one ``INCR`` however many keys it has
(old entries become unreachable and expire by TTL) and the hit path pays no second round
trip. A write is a Lua compare-and-set: it lands only if the generation and the entry's
token are still what the reader saw, so a value loaded before a concurrent eviction (of
the prefix, or of the key, which leaves a tombstone with a new token) never lands after it.
A missing generation is created from the clock, so a generation key lost to
``maxmemory`` eviction can never make older entries reachable again.

Fail-open: socket timeouts, no retries, and a circuit breaker bound what an outage costs a
call; errors are counted and logged (once per outage), never raised. An eviction that fails
is kept, its prefix is not served by this process meanwhile, and a background task
delivers it as soon as Redis takes it, without waiting for a read (docs/how-to/replicas.md gives
what other processes can observe meanwhile).

Every key of a prefix carries the hash tag ``{p}``, so on a Redis Cluster the generation and
the entries of one prefix live in one slot and the Lua scripts stay single-slot.

Near-cache (``near=True``): hits are served from process memory
(:mod:`~viveka_db.cache.near`); every eviction publishes the key it changed in the same
script (:mod:`~viveka_db.cache.invalidation`), so other processes drop their copies.
A near miss reads the entry's remaining TTL along with it (one script, one round trip),
so no entry outlives its Redis TTL in memory.

Every command goes through :meth:`RedisCache._command`: one home for its timeout, its turn
among the commands in flight, its failure accounting and its telemetry span.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any, cast

from viveka_db.cache.backend import CacheBackend, Lookup, Stamp
from viveka_db.cache.breaker import CircuitBreaker
from viveka_db.cache.eviction_journal import EvictionJournal
from viveka_db.cache.invalidation import GENERATION_TOKEN, InvalidationListener, channel_for
from viveka_db.cache.near import NearCache
from viveka_db.cache.redis_clients import client_from_url, misconfigured_cluster_message
from viveka_db.config.urls import mask_url
from viveka_db.telemetry.cache import CacheSpan, cache_span, redis_attributes

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.commands.core import AsyncScript

__all__ = ["RedisCache"]

logger = logging.getLogger("viveka_db.cache")

_MAGIC = b"vk1:"
_TOMBSTONE = b"vkT:"
_GENERATION = GENERATION_TOKEN
_LEASE = "~lease:"
"""Lease keys never collide with entries: no encoded argument starts with ``~le``."""

_PUT = """
local gen = redis.call('GET', KEYS[1])
if gen then
  if gen ~= ARGV[1] then return 0 end
else
  if ARGV[1] ~= '' then return 0 end
  gen = ARGV[6]
  redis.call('SET', KEYS[1], gen)
end
local cur = redis.call('GET', KEYS[2])
local tok = ''
if cur then tok = string.sub(cur, 5, 20) end
if tok ~= ARGV[2] then return 0 end
local stored = 'vk1:' .. ARGV[5] .. string.rep('0', 20 - #gen) .. gen .. ARGV[3]
redis.call('SET', KEYS[2], stored, 'PX', ARGV[4])
return 1
"""

_EVICT_PREFIX = """
local result = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  result = redis.call('INCR', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], KEYS[1])
return result
"""

_EVICT_KEY = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return 1
"""

_NEAR_READ = """
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('PTTL', KEYS[2])}
"""


_FAILED: Any = object()
"""What :meth:`RedisCache._command` returns when a command did not complete."""


def _fresh_generation() -> bytes:
    return str(time.time_ns() // 1000).encode()


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
        if "{" in namespace or "}" in namespace or not namespace:
            raise ValueError(f"namespace must be non-empty without braces, got {namespace!r}")
        self.namespace = namespace
        self.default_ttl = float(default_ttl)
        self.tombstone_ttl = float(tombstone_ttl)
        self._url = mask_url(url) if url is not None else repr(client)
        if client is None:
            assert url is not None
            client = client_from_url(
                url,
                connect_timeout=connect_timeout or socket_timeout,
                max_connections=max_connections,
                pool_timeout=pool_timeout,
                options=options,
            )
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._put: AsyncScript = client.register_script(_PUT)
        self._evict: AsyncScript = client.register_script(_EVICT_PREFIX)
        self._evict_one: AsyncScript = client.register_script(_EVICT_KEY)
        self._near_read: AsyncScript = client.register_script(_NEAR_READ)
        self._channel = channel_for(namespace)
        self._near: NearCache | None = None
        self._listener: InvalidationListener | None = None
        if near:
            self._near = NearCache(max_entries=near_max_entries, ttl=near_ttl)
            self._listener = InvalidationListener(client, namespace, self._near)
        self._timeout = socket_timeout
        self._breaker = CircuitBreaker(
            failure_threshold=failure_threshold, recovery_time=recovery_time
        )
        self._bases: dict[str, str] = {}
        self._pending: dict[tuple[str, str | None], None] = {}
        """Evictions that failed, oldest first; their prefixes are not served meanwhile."""
        self._pending_prefixes: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.eviction_retry_interval = eviction_retry_interval
        self._max_in_flight = max_connections
        self._pool_timeout = pool_timeout
        self._slot_state: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._warned_cluster = False
        self.lease_wait = float(lease_wait)
        self._journal = None if eviction_journal is None else EvictionJournal(eviction_journal)
        if self._journal is not None:
            for prefix, key in self._journal.load():  # left by a process that exited
                self._pending[(prefix, key)] = None
                self._pending_prefixes.add(prefix)
        self._span_attributes: dict[str, Any] | None = None

    @property
    def span_attributes(self) -> dict[str, Any]:
        """The server attributes of this backend's spans (``db.system.name = "redis"``...)."""
        attributes = self._span_attributes
        if attributes is None:
            pool = getattr(self._client, "connection_pool", None)
            kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", None) or {}
            attributes = self._span_attributes = redis_attributes(kwargs)
        return attributes

    @property
    def near(self) -> NearCache | None:
        """The near-cache (``near=True``), else ``None``."""
        return self._near

    @property
    def stable_payloads(self) -> bool:  # type: ignore[override]
        """With a near-cache, hits return the payload object it holds."""
        return self._near is not None

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
        return not self._breaker.is_open

    def key_for(self, prefix: str, key: str) -> str:
        """The Redis key of one entry (for tools and tests)."""
        return self._base(prefix) + key

    def generation_key(self, prefix: str) -> str:
        return self._base(prefix) + _GENERATION

    def _base(self, prefix: str) -> str:
        base = self._bases.get(prefix)
        if base is None:
            base = self._bases[prefix] = f"{self.namespace}:{{{prefix}}}:"
        return base

    # -- operations -----------------------------------------------------------------------

    def peek(self, prefix: str, key: str) -> bytes | None:
        near = self._near
        if near is None:
            return None
        held = self._near_hit(near, prefix, key)
        return None if held is None else held[0]

    def _near_hit(self, near: NearCache, prefix: str, key: str) -> Lookup | None:
        """The near-cache's entry, if it holds one it trusts (starting its listener on this
        event loop first, so that one is being kept trustworthy)."""
        listener = self._listener
        assert listener is not None
        if listener.running_loop is not asyncio.get_running_loop():
            listener.start()
        return near.get(prefix, key)

    async def read(self, prefix: str, key: str) -> Lookup:
        near = self._near
        if near is not None:
            held = self._near_hit(near, prefix, key)
            if held is not None:
                return held
        if self._pending_prefixes:
            self._ensure_flusher()
            if prefix in self._pending_prefixes:
                return None, None  # an eviction of it is not delivered yet: never serve it
        if not self._breaker.allow():
            self.counters.short_circuits += 1
            return None, None
        base = self._bases.get(prefix) or self._base(prefix)
        if near is None:
            found = await self._command(
                "read", "MGET", self._client.mget, base + _GENERATION, base + key, read=True
            )
            if found is _FAILED:
                return None, None
            generation, raw = cast("list[bytes | None]", found)
            return _lookup(generation, raw)
        mark = near.mark(prefix)
        found = await self._command(
            "read",
            "EVALSHA",
            self._near_read,
            keys=[base + _GENERATION, base + key],
            client=self._client,
            read=True,
        )
        if found is _FAILED:
            return None, None
        generation, raw, pttl = cast("list[Any]", found)
        lookup = _lookup(generation, raw)
        payload, stamp = lookup
        if payload is not None and stamp is not None:
            ttl = int(pttl) / 1000 if isinstance(pttl, int) and pttl >= 0 else None
            near.put(prefix, key, payload, stamp, mark, ttl)
        return lookup

    async def write(
        self, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
    ) -> bool:
        if not isinstance(stamp, tuple) or not self._breaker.allow():
            self.counters.short_circuits += 1
            return False
        if prefix in self._pending_prefixes:
            return False
        generation, token = cast("tuple[bytes, bytes]", stamp)
        ttl_ms = max(1, int((self.default_ttl if ttl is None else ttl) * 1000))
        base = self._base(prefix)
        near = self._near
        mark = near.mark(prefix) if near is not None else None
        new_token = secrets.token_hex(8)
        fresh = _fresh_generation()
        stored = await self._command(
            "write",
            "EVALSHA",
            self._put,
            keys=[base + _GENERATION, base + key],
            args=[generation, token, payload, ttl_ms, new_token, fresh],
            client=self._client,
        )
        if stored is _FAILED:
            return False
        if stored:
            self.counters.writes += 1
            if near is not None and mark is not None:
                new_stamp = (generation or fresh, new_token.encode())
                near.put(prefix, key, payload, new_stamp, mark, ttl_ms / 1000)
            return True
        self.counters.rejected_writes += 1
        return False

    async def evict_key(self, prefix: str, key: str) -> None:
        self.counters.evictions += 1
        if self._near is not None:
            self._near.invalidate_key(prefix, key)
        if prefix in self._pending_prefixes or not await self._evict_now(prefix, key):
            self._remember(prefix, key)

    async def evict_prefix(self, prefix: str) -> None:
        self.counters.evictions += 1
        if self._near is not None:
            self._near.invalidate_prefix(prefix)
        if prefix in self._pending_prefixes or not await self._evict_now(prefix, None):
            self._remember(prefix, None)

    async def close(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
        if self._listener is not None:
            await self._listener.stop()
        if self._owns_client:
            await self._client.aclose()

    async def acquire_lease(self, prefix: str, key: str) -> bool | None:
        if not self._breaker.allow():
            return None
        ttl_ms = max(1000, int(self.lease_wait * 10_000))  # outlives slow loads, not a crash
        taken = await self._command(
            "lease",
            "SET",
            self._client.set,
            self._base(prefix) + _LEASE + key,
            b"1",
            nx=True,
            px=ttl_ms,
        )
        return None if taken is _FAILED else bool(taken)

    async def release_lease(self, prefix: str, key: str) -> None:
        await self._command("lease", "DEL", self._client.delete, self._base(prefix) + _LEASE + key)

    @property
    def pending_evictions(self) -> int:
        """Evictions not yet delivered to Redis (retried in the background until they are)."""
        return len(self._pending)

    # -- one command ----------------------------------------------------------------------

    async def _command(
        self, what: str, operation: str, call: Any, *args: Any, read: bool = False, **kwargs: Any
    ) -> Any:
        """Run one Redis command under the timeout; ``_FAILED`` if it did not complete.

        At most ``max_connections`` commands are in flight: the others queue here, up to
        ``pool_timeout``, before their own timeout starts, so a burst is never mistaken for
        a slow Redis. A command that cannot get a turn is a miss, not a breaker failure.
        ``operation`` names the command's span; a ``read`` span records hit or miss.
        """
        with cache_span(operation, self.span_attributes) as span:
            slots = self._slots()
            if slots.locked():
                try:
                    async with asyncio.timeout(self._pool_timeout):
                        await slots.acquire()
                except TimeoutError as exc:
                    self.counters.pool_timeouts += 1
                    span.fail(exc)
                    return _FAILED
            else:
                await slots.acquire()
            try:
                async with asyncio.timeout(self._timeout):
                    result = await call(*args, **kwargs)
            except Exception as exc:
                span.fail(exc)
                self._failed(exc, what)
                return _FAILED
            finally:
                slots.release()
            if read:
                _record_read(span, result)
        if self._breaker.record_success():
            self._recovered()
        return result

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        state = self._slot_state
        if state is None or state[0] is not loop:
            state = self._slot_state = (loop, asyncio.Semaphore(self._max_in_flight))
        return state[1]

    # -- failure handling -----------------------------------------------------------------

    async def _evict_now(self, prefix: str, key: str | None, *, probe: bool = False) -> bool:
        if not probe and not self._breaker.allow():
            self.counters.short_circuits += 1
            return False
        base = self._base(prefix)
        if key is None:
            done = await self._command(
                "eviction",
                "EVALSHA",
                self._evict,
                keys=[base + _GENERATION],
                args=[_fresh_generation(), self._channel],
                client=self._client,
            )
        else:
            tombstone = _TOMBSTONE + secrets.token_hex(8).encode()
            ttl_ms = max(1, int(self.tombstone_ttl * 1000))
            done = await self._command(
                "eviction",
                "EVALSHA",
                self._evict_one,
                keys=[base + key],
                args=[tombstone, ttl_ms, self._channel],
                client=self._client,
            )
        return done is not _FAILED

    def _remember(self, prefix: str, key: str | None) -> None:
        if key is None:  # a prefix eviction covers the pending key evictions under it
            covered = [p for p in self._pending if p[0] == prefix]
            for pending in covered:
                del self._pending[pending]
            if covered and self._journal is not None:
                with contextlib.suppress(OSError):
                    self._journal.remove(covered)
        elif (prefix, None) in self._pending:
            return
        self._pending[(prefix, key)] = None
        if self._journal is not None:
            try:
                self._journal.add(prefix, key)
            except OSError as exc:
                logger.warning("could not record a pending cache eviction: %s", exc)
        if prefix in self._pending_prefixes:
            return  # logged when the prefix's first eviction failed
        self._pending_prefixes.add(prefix)
        logger.warning(
            "cache eviction of %s in %s failed; it is retried in the background, and the "
            "prefix is not served from the cache in this process until it is delivered",
            prefix if key is None else f"{prefix}:{key}",
            self,
        )
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        flusher = self._flusher
        loop = asyncio.get_running_loop()
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush(), name="viveka_db eviction flusher")

    async def _flush(self) -> None:
        """Deliver failed evictions without waiting for a read: retry until Redis takes them.

        Each retry is one command sent even while the breaker is open (it doubles as the
        breaker's probe), every ``eviction_retry_interval`` seconds at most.
        """
        while self._pending:
            await asyncio.sleep(self.eviction_retry_interval)
            await self._replay()

    async def _replay(self) -> bool:
        """Retry failed evictions (oldest first); ``True`` once none is left."""
        for prefix, key in list(self._pending):
            if not await self._evict_now(prefix, key, probe=True):
                return False
            del self._pending[(prefix, key)]
            if not any(p == prefix for p, _ in self._pending):
                self._pending_prefixes.discard(prefix)
            if self._journal is not None:
                try:
                    self._journal.remove([(prefix, key)])
                except OSError as exc:  # delivered anyway; a later start re-delivers it
                    logger.warning("could not update the cache eviction journal: %s", exc)
        logger.info("delivered the cache evictions that failed while %s was unreachable", self)
        return True

    def _failed(self, exc: Exception, what: str) -> None:
        self.counters.errors += 1
        if (
            exc.__class__.__name__ == "ResponseError"
            and str(exc).startswith(("MOVED", "ASK"))
            and not self._warned_cluster
        ):
            self._warned_cluster = True
            logger.error("%s: %s", self, misconfigured_cluster_message())
        if self._breaker.record_failure():
            logger.warning(
                "cache backend %s failed (%s: %s); serving from the database and skipping the "
                "cache for %.1fs",
                self,
                what,
                exc.__class__.__name__,
                self._breaker.recovery_time,
            )
        else:
            logger.debug("cache %s failed on %s: %r", what, self, exc)

    def _recovered(self) -> None:
        logger.info("cache backend %s is reachable again; caching resumed", self)


def _lookup(generation: bytes | None, raw: bytes | None) -> Lookup:
    """A read's result from the generation and the stored entry (see the module layout)."""
    if raw is None:
        return None, (generation or b"", b"")
    if generation is not None and raw[:4] == _MAGIC and raw[20:40] == generation.rjust(20, b"0"):
        return raw[40:], (generation, raw[4:20])
    return None, (generation or b"", raw[4:20])


def _record_read(span: CacheSpan, found: Any) -> None:
    """Mark a read's span as a hit or a miss (the entry is the second item of the reply)."""
    entries = cast("list[Any]", found)
    hit = len(entries) > 1 and _lookup(entries[0], entries[1])[0] is not None
    span.set_result("hit" if hit else "miss")
