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
call; errors are counted and logged (once per outage), never raised. Evictions that fail
are remembered and replayed before the prefix is served again.

Near-cache (``near=True``): hits are served from process memory
(:mod:`~viveka_db.cache.near`); every eviction publishes the key it changed in the same
script (:mod:`~viveka_db.cache.invalidation`), so other processes drop their copies.
A near miss reads the entry's remaining TTL along with it (one script, one round trip),
so no entry outlives its Redis TTL in memory.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from viveka_db.cache.backend import CacheBackend, Lookup, Stamp
from viveka_db.cache.breaker import CircuitBreaker
from viveka_db.cache.invalidation import GENERATION_TOKEN, InvalidationListener, channel_for
from viveka_db.cache.near import NearCache
from viveka_db.telemetry.cache import cache_span, redis_attributes

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisCache", "mask_redis_url"]

logger = logging.getLogger("viveka_db.cache")

_MAGIC = b"vk1:"
_TOMBSTONE = b"vkT:"
_GENERATION = GENERATION_TOKEN

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


def mask_redis_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs, reprs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _fresh_generation() -> bytes:
    return str(time.time_ns() // 1000).encode()


class RedisCache(CacheBackend):
    """Redis behind the cache decorators.

    ``RedisCache(url="redis://:password@host:6379/0")`` (``rediss://`` for TLS; extra
    keyword arguments such as ``ssl_ca_certs`` go to ``redis.asyncio.Redis.from_url``), or
    ``RedisCache(client=...)`` to use a client you built. ``socket_timeout`` bounds each
    command; after ``failure_threshold`` consecutive failures the backend is skipped for
    ``recovery_time`` seconds, then probed again.

    ``near=True`` adds a near-cache of up to ``near_max_entries`` entries, each served for
    at most ``near_ttl`` seconds from process memory, and invalidated by evictions of any
    process through Redis pub/sub (:mod:`~viveka_db.cache.near`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        namespace: str = "viveka",
        default_ttl: float = 3600.0,
        socket_timeout: float = 0.25,
        connect_timeout: float | None = None,
        failure_threshold: int = 3,
        recovery_time: float = 5.0,
        tombstone_ttl: float = 300.0,
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
        self._url = mask_redis_url(url) if url is not None else repr(client)
        if client is None:
            assert url is not None
            client = _client_from_url(url, connect_timeout or socket_timeout, options)
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
        """Evictions that failed; replayed before their prefix is served again."""
        self._pending_prefixes: set[str] = set()
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

    def __repr__(self) -> str:
        return f"RedisCache({self._url!r}, namespace={self.namespace!r})"

    @property
    def client(self) -> Redis:
        return self._client

    @property
    def near(self) -> NearCache | None:
        """The near-cache (``near=True``), else ``None``."""
        return self._near

    @property
    def listener(self) -> InvalidationListener | None:
        """What keeps the near-cache subscribed to other processes' evictions."""
        return self._listener

    @property
    def available(self) -> bool:
        """``False`` while the circuit breaker is open (Redis considered down)."""
        return not self._breaker.is_open

    remote = True

    async def ping(self) -> None:
        with cache_span("PING", self.span_attributes):
            await self._client.ping()  # pyright: ignore[reportUnknownMemberType]

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

    async def read(self, prefix: str, key: str) -> Lookup:
        near = self._near
        if near is not None:
            listener = self._listener
            assert listener is not None
            if listener.running_loop is not asyncio.get_running_loop():
                listener.start()
            held = near.get(prefix, key)
            if held is not None:
                return held
            return await self._read_near_miss(near, prefix, key)
        if self._pending:
            await self._replay()
            if prefix in self._pending_prefixes:
                return None, None
        if not self._breaker.allow():
            self.counters.short_circuits += 1
            return None, None
        base = self._bases.get(prefix) or self._base(prefix)
        with cache_span("MGET", self.span_attributes) as span:
            try:
                async with asyncio.timeout(self._timeout):
                    found = await self._client.mget(base + _GENERATION, base + key)
                generation, raw = cast("list[bytes | None]", found)
            except Exception as exc:
                span.fail(exc)
                self._failed(exc, "read")
                return None, None
            if self._breaker.record_success():
                self._recovered()
            lookup = _lookup(generation, raw)
            span.set_result("miss" if lookup[0] is None else "hit")
            return lookup

    async def _read_near_miss(self, near: NearCache, prefix: str, key: str) -> Lookup:
        """:meth:`read` when the near-cache has nothing: Redis, then keep what it had."""
        if self._pending:
            await self._replay()
            if prefix in self._pending_prefixes:
                return None, None
        if not self._breaker.allow():
            self.counters.short_circuits += 1
            return None, None
        base = self._bases.get(prefix) or self._base(prefix)
        mark = near.mark(prefix)
        with cache_span("EVALSHA", self.span_attributes) as span:
            try:
                async with asyncio.timeout(self._timeout):
                    found = await self._near_read(
                        keys=[base + _GENERATION, base + key], client=self._client
                    )
                generation, raw, pttl = cast("list[Any]", found)
            except Exception as exc:
                span.fail(exc)
                self._failed(exc, "read")
                return None, None
            if self._breaker.record_success():
                self._recovered()
            lookup = _lookup(generation, raw)
            span.set_result("miss" if lookup[0] is None else "hit")
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
        generation, token = cast("tuple[bytes, bytes]", stamp)
        ttl_ms = max(1, int((self.default_ttl if ttl is None else ttl) * 1000))
        base = self._base(prefix)
        span = cache_span("EVALSHA", self.span_attributes)
        near = self._near
        mark = near.mark(prefix) if near is not None else None
        new_token = secrets.token_hex(8)
        fresh = _fresh_generation()
        try:
            async with asyncio.timeout(self._timeout):
                stored = await self._put(
                    keys=[base + _GENERATION, base + key],
                    args=[
                        generation,
                        token,
                        payload,
                        ttl_ms,
                        new_token,
                        fresh,
                    ],
                    client=self._client,
                )
        except Exception as exc:
            span.fail(exc)
            self._failed(exc, "write")
            return False
        finally:
            span.end()
        if self._breaker.record_success():
            self._recovered()
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
        if not await self._evict_now(prefix, key):
            self._remember(prefix, key)

    async def evict_prefix(self, prefix: str) -> None:
        self.counters.evictions += 1
        if self._near is not None:
            self._near.invalidate_prefix(prefix)
        if not await self._evict_now(prefix, None):
            self._remember(prefix, None)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        if self._owns_client:
            await self._client.aclose()

    # -- failure handling -----------------------------------------------------------------

    async def _evict_now(self, prefix: str, key: str | None) -> bool:
        if not self._breaker.allow():
            self.counters.short_circuits += 1
            return False
        base = self._base(prefix)
        span = cache_span("EVALSHA" if key is None else "SET", self.span_attributes)
        try:
            async with asyncio.timeout(self._timeout):
                await self._evict_command(base, key)
        except Exception as exc:
            span.fail(exc)
            self._failed(exc, "eviction")
            return False
        finally:
            span.end()
        if self._breaker.record_success():
            self._recovered()
        return True

    async def _evict_command(self, base: str, key: str | None) -> None:
        if key is None:
            await self._evict(
                keys=[base + _GENERATION],
                args=[_fresh_generation(), self._channel],
                client=self._client,
            )
        else:
            tombstone = _TOMBSTONE + secrets.token_hex(8).encode()
            await self._evict_one(
                keys=[base + key],
                args=[tombstone, max(1, int(self.tombstone_ttl * 1000)), self._channel],
                client=self._client,
            )

    def _remember(self, prefix: str, key: str | None) -> None:
        self._pending[(prefix, key)] = None
        self._pending_prefixes.add(prefix)
        logger.warning(
            "cache eviction of %s in %s failed; it will be retried, and the prefix is not "
            "served from the cache in this process until it succeeds",
            prefix if key is None else f"{prefix}:{key}",
            self,
        )

    async def _replay(self) -> bool:
        """Retry failed evictions (oldest first); ``True`` once none is left."""
        for prefix, key in list(self._pending):
            if not await self._evict_now(prefix, key):
                return False
            del self._pending[(prefix, key)]
            if not any(p == prefix for p, _ in self._pending):
                self._pending_prefixes.discard(prefix)
        return True

    def _failed(self, exc: Exception, what: str) -> None:
        self.counters.errors += 1
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


def _client_from_url(url: str, connect_timeout: float, options: dict[str, Any]) -> Redis:
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'RedisCache needs the redis package: pip install "viveka-db[redis]"'
        ) from exc
    # Each command is bounded by RedisCache itself with one ``asyncio.timeout``: redis-py's
    # own socket_timeout wraps every send and read in ``asyncio.wait_for``, which costs a
    # task per call (a third of a hit's CPU time under load). redis-py disconnects a
    # connection whose command was cancelled, so a timed-out connection is never reused.
    options.setdefault("socket_timeout", None)
    options.setdefault("socket_connect_timeout", connect_timeout)
    options.setdefault("retry", Retry(NoBackoff(), 0))
    client: Redis = Redis.from_url(url, **options)  # pyright: ignore[reportUnknownMemberType]
    return client
