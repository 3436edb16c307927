"""``DbRepo[T]``: the generic repository (also importable from here, a stable alias path).

It is composed of one module per concern in :mod:`viveka_db.repository`: ``crud`` (by
key and field), ``query`` (fluent queries, ``load=``), ``save``, ``soft_delete``,
``pagination``, ``bulk`` (``insert_all``), ``upsert``, ``get_or_create``, ``streaming``,
``projection``, ``derived`` (methods implemented from their name) and ``claim``
(``claim_batch``, a work queue); ``row_locks`` gives every read its ``lock=``.
"""

from __future__ import annotations

from viveka_db.repository.base import T
from viveka_db.repository.claim import ClaimRepository
from viveka_db.repository.derived import DerivedQueryRepository
from viveka_db.repository.get_or_create import GetOrCreateRepository
from viveka_db.repository.pagination import Page, PagingRepository, Slice
from viveka_db.repository.save import SaveRepository
from viveka_db.repository.streaming import StreamRepository

__all__ = ["DbRepo", "Page", "Slice"]


class DbRepo(
    GetOrCreateRepository[T],
    SaveRepository[T],
    PagingRepository[T],
    StreamRepository[T],
    DerivedQueryRepository[T],
    ClaimRepository[T],
):
    """Generic async repository of one entity type (Spring Data's ``JpaRepository``).

    ``class UserRepo(DbRepo[User])`` with ``super().__init__(User)`` (or no ``__init__``
    at all: the entity is read from ``DbRepo[User]``). Every method works from a
    ``@transactional`` method, inside a request, or called directly (its own transaction).
    Soft-deleted rows are hidden unless the view says otherwise (``with_deleted()``).
    """
