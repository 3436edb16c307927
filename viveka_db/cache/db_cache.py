"""A stable alias module: ``from viveka_db.cache.db_cache import RedisCache`` keeps working.

The names are the package-level ones (``viveka_db.RedisCache``); see the import paths in
``docs/reference/index.md``.
"""

from viveka_db.cache.backend import CacheBackend, CacheStats
from viveka_db.cache.current import get_cache, use_cache
from viveka_db.cache.memory import MemoryCache
from viveka_db.cache.null import NullCache
from viveka_db.cache.redis_cache import RedisCache

__all__ = [
    "CacheBackend",
    "CacheStats",
    "MemoryCache",
    "NullCache",
    "RedisCache",
    "get_cache",
    "use_cache",
]
