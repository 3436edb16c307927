"""The cache layer behind ``@cacheable`` / ``@cache_evict``.

The backends are importable from :mod:`viveka_db` itself; this package adds
:func:`register_backend`, the extension point for a backend of your own behind a URL scheme.
"""

# Importing the package registers the [cache] start-up hook with the session layer.
from viveka_db.cache import setup as setup
from viveka_db.cache.backend import CacheBackend, CacheStats
from viveka_db.cache.current import get_cache, use_cache
from viveka_db.cache.memory import MemoryCache
from viveka_db.cache.null import NullCache
from viveka_db.cache.redis_cache import RedisCache
from viveka_db.cache.registry import register_backend

__all__ = [
    "CacheBackend",
    "CacheStats",
    "MemoryCache",
    "NullCache",
    "RedisCache",
    "get_cache",
    "register_backend",
    "use_cache",
]
