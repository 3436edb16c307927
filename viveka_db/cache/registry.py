"""Backends by URL scheme: ``cache_from_url("redis://...")``, extensible with ``register_backend``.

A backend whose library is missing is still registered; it explains which extra to
install when it is built, rather than the scheme looking unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from viveka_db.cache.backend import CacheBackend
from viveka_db.errors import ConfigurationError

__all__ = ["cache_from_url", "register_backend", "registered_schemes"]

BackendFactory = Callable[..., CacheBackend]

_factories: dict[str, BackendFactory] = {}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Build ``scheme://`` URLs with ``factory(url=url, **options)``."""
    _factories[scheme.lower()] = factory


def registered_schemes() -> list[str]:
    return sorted(_factories)


def cache_from_url(url: str | None, **options: Any) -> CacheBackend:
    """The backend ``url`` names; an empty URL means the in-process ``MemoryCache``."""
    scheme = urlsplit(url).scheme.lower() if url else "memory"
    factory = _factories.get(scheme)
    if factory is None:
        raise ConfigurationError(
            f"[cache] url has unknown scheme {scheme!r}; valid schemes are: "
            f"{', '.join(registered_schemes())}"
        )
    return factory(url=url, **options)


def _redis(url: str | None = None, **options: Any) -> CacheBackend:
    from viveka_db.cache.redis_cache import RedisCache

    return RedisCache(url, **options)


def _memory(url: str | None = None, **options: Any) -> CacheBackend:
    from viveka_db.cache.memory import MemoryCache

    options.pop("socket_timeout", None)
    return MemoryCache(**options)


def _null(url: str | None = None, **options: Any) -> CacheBackend:
    from viveka_db.cache.null import NullCache

    return NullCache(
        namespace=options.get("namespace", "viveka"), default_ttl=options.get("default_ttl", 3600.0)
    )


for _scheme in (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
):
    register_backend(_scheme, _redis)
register_backend("memory", _memory)
register_backend("null", _null)
