"""What served each ``@cacheable`` call, counted in one place.

A backend's :meth:`~viveka_db.cache.backend.CacheBackend.stats` and the telemetry metric
``viveka_db.cache.requests`` must never disagree, so every hit and every miss goes
through :func:`account`, which bumps both; nothing else touches ``hits`` or ``misses``.
The failures the cache swallows (a backend error, a corrupt entry) are counted here too.
"""

from __future__ import annotations

import logging
from typing import Any

from viveka_db.cache.backend import CacheBackend
from viveka_db.cache.serializer import CorruptPayloadError, loads
from viveka_db.telemetry.cache import CacheResult, record_cache_request

__all__ = ["NOTHING", "account", "backend_failed", "corrupt", "decoded_hit"]

logger = logging.getLogger("viveka_db.cache")

NOTHING: Any = object()
"""No value to serve: the payload could not be read, or a flight had nothing to share."""

_warned: set[tuple[int, str]] = set()
"""Backends and prefixes whose corrupt entries were already logged (once each)."""


def decoded_hit(backend: CacheBackend, prefix: str, payload: bytes, *, report: bool = True) -> Any:
    """A hit's value, counted; ``NOTHING`` if it cannot be read (counted and logged as
    corrupt when ``report``)."""
    try:
        value = loads(payload, reuse=backend.stable_payloads)
    except CorruptPayloadError as exc:
        if report:
            corrupt(backend, prefix, exc)
        return NOTHING
    account(backend, "hit")
    return value


def account(backend: CacheBackend, result: CacheResult) -> None:
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


def backend_failed(backend: CacheBackend, what: str, exc: Exception) -> None:
    backend.counters.errors += 1
    logger.warning(
        "cache %s failed on %r; continuing without the cache", what, backend, exc_info=exc
    )


def corrupt(backend: CacheBackend, prefix: str, exc: CorruptPayloadError) -> None:
    backend.counters.errors += 1
    what = (id(backend), prefix)
    if what not in _warned:
        _warned.add(what)
        logger.warning(
            "ignoring a cache entry under %r that this library cannot read (%s); treated as a miss",
            prefix,
            exc,
        )
