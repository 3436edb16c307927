"""The cache layer behind ``@cacheable`` / ``@cache_evict``."""

# Importing the package registers the [cache] start-up hook with the session layer.
from viveka_db.cache import setup as setup
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
