"""The attribute that ties an object's methods to a data source.

A repository (or any service) carrying ``_viveka_data_source`` runs its ``@transactional``,
``@query``, ``@cacheable`` and ``self.db`` work against that data source instead of
``"default"``. It lives in the context layer because every layer above it (transactions,
the cache, the decorators, repositories) reads it, and none of them may import another.
"""

from __future__ import annotations

__all__ = ["DATA_SOURCE_ATTR"]

DATA_SOURCE_ATTR = "_viveka_data_source"
"""Name of the attribute holding the data source of a repository or service instance."""
