"""Which data source a call works against, decided in one place.

A repository (or any service) carrying ``_viveka_data_source`` runs its ``@transactional``,
``@query``, ``@cacheable``, row-lock and ``self.db`` work against that data source instead
of ``"default"``. It lives in the context layer because every layer above it (transactions,
the cache, the decorators, repositories) needs the answer, and none of them may import
another.
"""

from __future__ import annotations

__all__ = ["DATA_SOURCE_ATTR", "DEFAULT", "data_source_of"]

DEFAULT = "default"
"""The data source of a call that names none and whose owner carries none."""

DATA_SOURCE_ATTR = "_viveka_data_source"
"""Name of the attribute holding the data source of a repository or service instance."""


def data_source_of(owner: object = None, named: str | None = None) -> str:
    """The data source of a call: ``named`` for it, else its ``owner``'s, else the default.

    ``named`` is what the call's own declaration says (``@transactional(data_source=...)``);
    ``owner`` is the instance a method runs on (``None`` for a plain function). A rule kept
    here so that a transaction, its cache entries, its row locks and ``self.db`` can never
    disagree about where the work goes.
    """
    if named is not None:
        return named
    source: str = getattr(owner, DATA_SOURCE_ATTR, DEFAULT)  # None carries no such attribute
    return source
