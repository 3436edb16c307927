"""A documented import path: ``from viveka_db.cache.db_cache import RedisCache``."""

from viveka_db.cache.backend import CacheBackend, CacheStats
from viveka_db.cache.current import get_cache, use_cache
from viveka_db.cache.memory import MemoryCache
from viveka_db.cache.null import NullCache
from viveka_db.cache.redis_cache import RedisCache
from viveka_db.cache.registry import cache_from_url, register_backend

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
