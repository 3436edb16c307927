"""The process-wide cache backend the decorators use: ``use_cache`` / ``get_cache``."""

from __future__ import annotations

from typing import cast

from viveka_db.cache.backend import CacheBackend

__all__ = ["get_cache", "install_configured", "use_cache"]

_current: CacheBackend | None = None
_explicit = False
"""Whether application code chose the backend (then configuration without a ``[cache]``
section does not replace it)."""


def use_cache(backend: CacheBackend) -> CacheBackend | None:
    """Make ``backend`` the cache of ``@cacheable``/``@cache_evict``; returns the previous one.

    The caller keeps ownership of both: close the previous backend if it is no longer used.
    """
    global _current, _explicit
    if not isinstance(cast(object, backend), CacheBackend):
        raise TypeError(
            f"use_cache() needs a CacheBackend (RedisCache, MemoryCache, ...), got {backend!r}"
        )
    previous, _current, _explicit = _current, backend, True
    return previous


def get_cache() -> CacheBackend:
    """The installed backend; an in-process ``MemoryCache`` until one is installed."""
    backend = _current
    if backend is None:
        from viveka_db.cache.memory import MemoryCache

        backend = install_configured(MemoryCache(), explicit=False)
    return backend


def install_configured(backend: CacheBackend, *, explicit: bool) -> CacheBackend:
    """Install a backend that configuration (not application code) chose.

    A backend chosen by ``use_cache`` survives configuration that does not name a cache
    explicitly (``explicit=False``), so start-up order does not matter.
    """
    global _current, _explicit
    if explicit or not _explicit or _current is None:
        _current, _explicit = backend, False
    return _current


def reset() -> None:
    """Forget the installed backend (tests start over); the next ``get_cache()`` makes a default."""
    global _current, _explicit
    _current, _explicit = None, False
