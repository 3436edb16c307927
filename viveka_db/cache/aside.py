"""Cache-aside, transaction-aware: what ``@cacheable`` and ``@cache_evict`` do on each call.

Inside a transaction (a request's or a ``@transactional`` one) writes and evictions are
registered as after-commit hooks of the *outermost* transaction, so they run only once it
committed (before the HTTP response starts) and vanish on rollback: a value read from rows
that are later rolled back is never cached, and an eviction never runs before the new rows
are visible to other readers. After an eviction inside a transaction, the transaction's own
reads of that prefix (or key) bypass the cache until it ends (read-your-writes).

Every write carries the stamp its read saw, and the backend refuses it once the prefix or
the entry has moved, so a value loaded before a concurrent eviction cannot land after it.

Read replicas: the loader of a miss reads from the primary (``primary_reads``), and a value
read in a transaction that already runs on a replica is returned but not cached. A
replica may lag behind a write whose eviction this miss has already seen; its older value
would otherwise stay cached for the whole TTL.

One window remains, and it is the database's, not the cache's: a transaction whose
snapshot is older than its cache read (REPEATABLE READ, MariaDB's default, after earlier
statements) can load a row that an eviction already superseded, under the new stamp. Use
READ COMMITTED for transactions that fill the cache, or keep such reads out of them.

Concurrent calls of one key in this process share one cache read and, on a miss, one load
(single flight), so the protection holds when the cache is slow or down: followers wait for
the leader, not for the cache. Only callers whose transaction has not touched the database
yet join, because a transaction that already wrote could see its own uncommitted rows, and
only while no eviction of the prefix has started in this process since the leader began.
Followers get their own copy, decoded from the leader's serialised value; if there is none
they read and load themselves.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from viveka_db.cache.backend import CacheBackend, Stamp
from viveka_db.cache.current import get_cache
from viveka_db.cache.keys import KeyBuilder, KeySpec
from viveka_db.cache.serializer import CorruptPayloadError, UnserializableError, dumps, loads
from viveka_db.context.data_source import DATA_SOURCE_ATTR
from viveka_db.context.db_context import DEFAULT, active_scope
from viveka_db.context.scope import TransactionScope
from viveka_db.replicas.consistency import ON_REPLICA_KEY, primary_reads, reads_on_replica
from viveka_db.telemetry.cache import CacheResult, record_cache_request

__all__ = ["CacheableSpec", "EvictSpec", "TransactionCacheState", "cached", "evict"]

logger = logging.getLogger("viveka_db.cache")

EXTRAS_KEY = "viveka_db.cache"


class _Flight:
    """A read (and load) in progress; followers wait on ``waiters``, created by the first."""

    __slots__ = ("epoch", "waiters")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.waiters: asyncio.Future[Any] | None = None


_flights: dict[tuple[int, str, str], _Flight] = {}
"""Reads (and their loads) in progress by backend and key."""

_epochs: dict[str, int] = {}
"""Per prefix, how many evictions this process has started (on any backend): a caller
joins a read in progress only if no eviction of the prefix began since that read did."""

_NOTHING: Any = object()
"""A flight's leader had nothing to share (it failed, or its value does not serialise)."""

_warned: set[tuple[int, str]] = set()
"""Backends and prefixes whose corrupt entries were already logged (once each)."""


class TransactionCacheState:
    """What a transaction evicted, so its own reads skip the cache until it ends."""

    __slots__ = ("keys", "prefixes")

    def __init__(self) -> None:
        self.prefixes: set[str] = set()
        self.keys: set[tuple[str, str]] = set()


class CacheableSpec:
    """A ``@cacheable`` decoration's options, validated once."""

    __slots__ = (
        "cache_none",
        "condition",
        "keys",
        "name",
        "prefix",
        "skip",
        "ttl",
        "unless",
        "warned",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        prefix: str,
        ttl: float | None,
        key: KeySpec | None,
        condition: Callable[..., bool] | None,
        unless: Callable[[Any], bool] | None,
        cache_none: bool,
    ) -> None:
        self.prefix = prefix
        self.ttl = ttl
        self.keys = KeyBuilder(fn, key)
        self.skip = self.keys.skip
        self.condition = condition
        self.unless = unless
        self.cache_none = cache_none
        self.name = getattr(fn, "__qualname__", repr(fn))
        self.warned: set[type[Any]] = set()
        """Result types already reported as unserialisable (each is logged once)."""


class EvictSpec:
    """A ``@cache_evict`` decoration's options; ``keys`` is ``None`` for the whole prefix."""

    __slots__ = ("keys", "prefix", "skip")

    def __init__(self, fn: Callable[..., Any], prefix: str, key: KeySpec | None) -> None:
        self.prefix = prefix
        builder = KeyBuilder(fn, key)
        self.skip = builder.skip
        self.keys = builder if key is not None else None

    def key_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The key to evict (``None``: the whole prefix), from the arguments as they are now.

        Taken before the method runs: a method that changes its arguments (a rename) must
        evict the entry cached under the old values, not one under the new values.
        """
        return self.keys.build(args, kwargs) if self.keys is not None else None


def _scope_for(skip: int, args: tuple[Any, ...]) -> TransactionScope | None:
    if skip and args:
        return active_scope(getattr(args[0], DATA_SOURCE_ATTR, DEFAULT))
    return active_scope(DEFAULT)


def cached(
    spec: CacheableSpec, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The ``@cacheable`` wrapper of ``fn``: the hit path, kept flat because it is hot."""
    build = spec.keys.build
    prefix = spec.prefix
    condition = spec.condition
    skip = spec.skip

    async def call(*args: Any, **kwargs: Any) -> Any:
        backend = get_cache()
        if condition is not None and not condition(*args[skip:], **kwargs):
            return await fn(*args, **kwargs)
        key = build(args, kwargs)
        scope = active_scope(getattr(args[0], DATA_SOURCE_ATTR, DEFAULT) if skip else DEFAULT)
        if scope is not None:
            state: TransactionCacheState | None = scope.extras.get(EXTRAS_KEY)
            if state is not None and (prefix in state.prefixes or (prefix, key) in state.keys):
                backend.counters.bypasses += 1
                return await fn(*args, **kwargs)
            if scope.has_session:  # may see its own uncommitted rows: never shares a load
                return (await _read_through(spec, fn, args, kwargs, backend, key, scope))[0]
        held = backend.peek(prefix, key)  # a hit in process memory: nothing to wait for
        if held is not None:
            value = _decoded_hit(backend, prefix, held, report=False)  # reported on the read
            if value is not _NOTHING:
                return value
        flight_key = (id(backend), prefix, key)
        flight = _flights.get(flight_key)
        epoch = _epochs.get(prefix, 0)
        if flight is not None and flight.epoch == epoch:
            return await _follow(flight, spec, fn, args, kwargs, backend, key, scope)
        mine = _flights[flight_key] = _Flight(epoch)
        shared = _NOTHING
        try:
            value, shared = await _read_through(spec, fn, args, kwargs, backend, key, scope)
        finally:
            if _flights.get(flight_key) is mine:
                del _flights[flight_key]
            if mine.waiters is not None:
                mine.waiters.set_result(shared)
        return value

    return call


def _decoded_hit(backend: CacheBackend, prefix: str, payload: bytes, *, report: bool = True) -> Any:
    """A hit's value, counted; ``_NOTHING`` if it cannot be read (counted and logged as
    corrupt when ``report``)."""
    try:
        value = loads(payload, reuse=backend.stable_payloads)
    except CorruptPayloadError as exc:
        if report:
            _corrupt(backend, prefix, exc)
        return _NOTHING
    _account(backend, "hit")
    return value


def _account(backend: CacheBackend, result: CacheResult) -> None:
    """Count one ``@cacheable`` call by what served it: the one place hits and misses are
    counted, for the backend's :meth:`~CacheBackend.stats` and the telemetry metric alike.

    Every call served is counted once: a read from the cache, a coalesced follower that
    took the value its leader read or loaded (a hit: it cost no load), a value another
    process filled while this one waited (a hit), a miss that ran the loader, and a miss
    because the backend failed (``"error"``, also counted as a miss).
    """
    counters = backend.counters
    if result == "hit":
        counters.hits += 1
    else:
        counters.misses += 1
    record_cache_request(result)


async def _follow(
    flight: _Flight,
    spec: CacheableSpec,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    backend: CacheBackend,
    key: str,
    scope: TransactionScope | None,
) -> Any:
    """Wait for the leader's read (and load) of the same key, and take a copy of its value."""
    waiters = flight.waiters
    if waiters is None:
        waiters = flight.waiters = asyncio.get_running_loop().create_future()
    shared = await asyncio.shield(waiters)
    if shared is None:
        _account(backend, "hit")  # served the leader's None without a load of its own
        return None
    if shared is not _NOTHING:
        try:
            value = loads(shared)
        except CorruptPayloadError:  # a type whose round trip fails: load it ourselves
            pass
        else:
            _account(backend, "hit")
            return value
    return (await _read_through(spec, fn, args, kwargs, backend, key, scope))[0]


async def _read_through(
    spec: CacheableSpec,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    backend: CacheBackend,
    key: str,
    scope: TransactionScope | None,
) -> tuple[Any, Any]:
    """Read the cache, load on a miss; returns the value and what followers may share.

    The shared form is the serialised value (each follower decodes its own copy), ``None``
    for a ``None`` result, or ``_NOTHING`` when followers must load themselves.
    """
    prefix = spec.prefix
    counters = backend.counters
    failures = counters.errors + counters.short_circuits
    try:
        payload, stamp = await backend.read(prefix, key)
    except Exception as exc:  # a third-party backend that does not fail open itself
        _backend_failed(backend, "read", exc)
        payload, stamp = None, None
    if payload is not None:
        value = _decoded_hit(backend, prefix, payload)
        if value is not _NOTHING:
            return value, payload
    failed = counters.errors + counters.short_circuits != failures
    leased = None
    if backend.lease_wait > 0 and stamp is not None and (scope is None or not scope.has_session):
        leased = await backend.acquire_lease(prefix, key)
        if leased is False:  # another process is loading it: wait a little for its value
            found = await _wait_for_fill(backend, prefix, key)
            if found is not None:
                return found  # counted as a hit
    _account(backend, "error" if failed else "miss")
    try:
        value = await _call_loader(spec, fn, args, kwargs)
        store = _should_store(spec, value)
        encoded = _encode(spec, value, store) if store or value is not None else None
        if store and encoded is not None:
            await _store(backend, spec, key, encoded, stamp, scope)
    finally:
        if leased:
            await backend.release_lease(prefix, key)
    if value is None:
        return None, None
    return value, _NOTHING if encoded is None else encoded


async def _wait_for_fill(backend: CacheBackend, prefix: str, key: str) -> tuple[Any, Any] | None:
    """Poll for the value another process is loading, up to ``backend.lease_wait`` seconds."""
    deadline = asyncio.get_running_loop().time() + backend.lease_wait
    delay = 0.005
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
        payload, stamp = await backend.read(prefix, key)
        if stamp is None:
            return None  # the backend failed meanwhile: load from the database
        if payload is not None:
            try:
                value = loads(payload)
            except CorruptPayloadError:
                return None
            _account(backend, "hit")
            return value, payload
    return None


async def _call_loader(
    spec: CacheableSpec,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run the loader of a miss; its new read-only sessions read the primary, not a replica."""
    data_source = getattr(args[0], DATA_SOURCE_ATTR, DEFAULT) if spec.skip and args else DEFAULT
    with primary_reads(data_source):
        return await fn(*args, **kwargs)


def _should_store(spec: CacheableSpec, value: Any) -> bool:
    if value is None and not spec.cache_none:
        return False
    return spec.unless is None or not spec.unless(value)


def _encode(spec: CacheableSpec, value: Any, logged: bool) -> bytes | None:
    try:
        return dumps(value)
    except UnserializableError as exc:
        if logged:
            kind: type[Any] = type(value)  # pyright: ignore[reportUnknownVariableType]
            if kind not in spec.warned:
                spec.warned.add(kind)
                logger.warning(
                    "%s returned a value the cache cannot store, so it is not cached: %s",
                    spec.name,
                    exc,
                )
            get_cache().counters.errors += 1
        return None


async def _store(
    backend: CacheBackend,
    spec: CacheableSpec,
    key: str,
    payload: bytes,
    stamp: Stamp | None,
    scope: TransactionScope | None,
) -> None:
    if stamp is None:  # the backend is unavailable: nothing may be written
        return
    if scope is not None and (
        ON_REPLICA_KEY in scope.extras  # a read without a session (repository.direct_get)
        or (scope.has_session and reads_on_replica(scope.session))
    ):
        return  # read on a replica that may predate the eviction this miss saw
    write = functools.partial(_write, backend, spec.prefix, key, payload, spec.ttl, stamp)
    if scope is None:
        await write()
    elif not scope.rollback_only:
        scope.after_commit(write)


async def _write(
    backend: CacheBackend, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
) -> None:
    try:
        await backend.write(prefix, key, payload, ttl, stamp)
    except Exception as exc:
        _backend_failed(backend, "write", exc)


async def evict(spec: EvictSpec, args: tuple[Any, ...], key: str | None) -> None:
    """Evict ``key`` (``None``: the prefix) of ``spec``, after the current transaction commits.

    ``key`` comes from :meth:`EvictSpec.key_for`, taken when the call started.
    """
    backend = get_cache()
    scope = _scope_for(spec.skip, args)
    if scope is None:
        await _evict_now(backend, spec.prefix, key)
        return
    state: TransactionCacheState | None = scope.extras.get(EXTRAS_KEY)
    if state is None:
        state = scope.extras[EXTRAS_KEY] = TransactionCacheState()
    if key is None:
        state.prefixes.add(spec.prefix)
    else:
        state.keys.add((spec.prefix, key))
    scope.after_commit(functools.partial(_evict_now, backend, spec.prefix, key))


async def _evict_now(backend: CacheBackend, prefix: str, key: str | None) -> None:
    _epochs[prefix] = _epochs.get(prefix, 0) + 1
    try:
        if key is None:
            await backend.evict_prefix(prefix)
        else:
            await backend.evict_key(prefix, key)
    except Exception as exc:
        _backend_failed(backend, "eviction", exc)


def _backend_failed(backend: CacheBackend, what: str, exc: Exception) -> None:
    backend.counters.errors += 1
    logger.warning(
        "cache %s failed on %r; continuing without the cache", what, backend, exc_info=exc
    )


def _corrupt(backend: CacheBackend, prefix: str, exc: CorruptPayloadError) -> None:
    backend.counters.errors += 1
    what = (id(backend), prefix)
    if what not in _warned:
        _warned.add(what)
        logger.warning(
            "ignoring a cache entry under %r that this library cannot read (%s); treated as a miss",
            prefix,
            exc,
        )
