"""Storing what a miss loaded: whether to keep it, its encoding, and when to write it.

A loaded value is written only with the stamp its read saw (so it cannot land after a
concurrent eviction), never from a read on a replica, and inside a transaction only once
that transaction commits (an after-commit hook of the outermost one; a rollback drops it).
The loader itself runs with reads on the primary.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from viveka_db.cache.accounting import backend_failed
from viveka_db.cache.backend import CacheBackend, Stamp
from viveka_db.cache.current import get_cache
from viveka_db.cache.serializer import UnserializableError, dumps
from viveka_db.cache.specs import CacheableSpec
from viveka_db.context.data_source import data_source_of
from viveka_db.context.scope import TransactionScope
from viveka_db.replicas.consistency import ON_REPLICA_KEY, primary_reads, reads_on_replica

__all__ = ["call_loader", "encode", "should_store", "store"]

logger = logging.getLogger("viveka_db.cache")


async def call_loader(
    spec: CacheableSpec,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run the loader of a miss; its new read-only sessions read the primary, not a replica."""
    data_source = data_source_of(args[0] if spec.skip and args else None)
    with primary_reads(data_source):
        return await fn(*args, **kwargs)


def should_store(spec: CacheableSpec, value: Any) -> bool:
    if value is None and not spec.cache_none:
        return False
    return spec.unless is None or not spec.unless(value)


def encode(spec: CacheableSpec, value: Any, logged: bool) -> bytes | None:
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


async def store(
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
    elif not scope.hooks.rollback_only:
        scope.hooks.after_commit(write)


async def _write(
    backend: CacheBackend, prefix: str, key: str, payload: bytes, ttl: float | None, stamp: Stamp
) -> None:
    try:
        await backend.write(prefix, key, payload, ttl, stamp)
    except Exception as exc:
        backend_failed(backend, "write", exc)
