"""The decorators users write, gathered at a stable alias path (``viveka_db`` exports them too).

Each decorator is thin and lives in its own module; this module gathers them.
"""

from viveka_db.base.entity_registry import entity, table
from viveka_db.decorator.cache import cache_evict, cacheable
from viveka_db.decorator.query import query
from viveka_db.decorator.repository import repository
from viveka_db.decorator.transactional import transactional

__all__ = [
    "cache_evict",
    "cacheable",
    "entity",
    "query",
    "repository",
    "table",
    "transactional",
]
