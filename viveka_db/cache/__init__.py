"""The cache layer behind ``@cacheable`` / ``@cache_evict`` (DESIGN D6)."""

from viveka_db.cache import setup as _setup  # registers the [cache] start-up hook
from viveka_db.cache.db_cache import (
    CacheBackend,
    CacheStats,
    MemoryCache,
    NullCache,
    RedisCache,
    cache_from_url,
    get_cache,
    register_backend,
    use_cache,
)

del _setup

__all__ = [
    "CacheBackend",
    "CacheStats",
    "MemoryCache",
    "NullCache",
    "RedisCache",
    "cache_from_url",
    "get_cache",
    "register_backend",
    "use_cache",
]
