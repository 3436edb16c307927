"""Installing the cache backend described by the ``[cache]`` section (owned by the cache layer).

Importing this module registers :func:`install_for_data_source` with the session layer, so
initialising the ``default`` data source installs its ``[cache]`` backend; the package's
``__init__`` imports it, so the hook is in place whenever :mod:`viveka_db` is imported.
"""

from __future__ import annotations

from typing import Any

from viveka_db.cache.backend import CacheBackend
from viveka_db.cache.current import get_cache, install_configured, reset, use_cache
from viveka_db.cache.memory import MemoryCache
from viveka_db.cache.null import NullCache
from viveka_db.cache.registry import cache_from_url
from viveka_db.cache.workers import warn_if_per_process
from viveka_db.config.settings import CacheSettings, VivekaSettings
from viveka_db.context.db_context import DEFAULT
from viveka_db.session.listeners import on_data_source_started

__all__ = [
    "backend_from_settings",
    "close_cache",
    "get_cache",
    "install_cache",
    "install_for_data_source",
    "install_from_settings",
]


def backend_from_settings(settings: CacheSettings) -> CacheBackend:
    """The backend ``settings`` describe: ``NullCache`` when disabled, else by URL scheme."""
    if not settings.enabled:
        return NullCache(namespace=settings.namespace, default_ttl=settings.default_ttl)
    options: dict[str, Any] = {"namespace": settings.namespace, "default_ttl": settings.default_ttl}
    url = settings.url or None
    if url is None or url.startswith("memory"):
        options["max_entries"] = settings.max_entries
    else:
        options["socket_timeout"] = settings.socket_timeout
        if settings.near:
            options.update(
                near=True,
                near_max_entries=settings.near_max_entries,
                near_ttl=settings.near_ttl,
            )
        options["max_connections"] = settings.max_connections
        options["pool_timeout"] = settings.pool_timeout
        options["lease_wait"] = settings.lease_wait
        if settings.eviction_journal:
            options["eviction_journal"] = settings.eviction_journal
    return cache_from_url(url, **options)


def install_from_settings(settings: CacheSettings) -> None:
    """Install the backend ``settings`` describe as the process-wide cache.

    A backend installed by application code with ``use_cache`` is kept unless the
    ``[cache]`` section names one explicitly (sets ``url`` or ``enabled``).
    """
    explicit = bool({"url", "enabled"} & settings.model_fields_set)
    installed = install_configured(backend_from_settings(settings), explicit=explicit)
    if isinstance(installed, MemoryCache):
        warn_if_per_process("the in-process MemoryCache (memory:// or no [cache] url)")


@on_data_source_started
def install_for_data_source(data_source: str, settings: VivekaSettings) -> None:
    """The session layer's start-up hook: the ``default`` data source's settings own the cache."""
    if data_source == DEFAULT:
        install_from_settings(settings.cache)


def install_cache(backend: CacheBackend) -> CacheBackend | None:
    """Install ``backend`` as the process-wide cache (``use_cache``); returns the previous one."""
    return use_cache(backend)


async def close_cache() -> None:
    """Close the installed backend's connections and forget it (application shutdown)."""
    backend = get_cache()
    reset()
    await backend.close()
