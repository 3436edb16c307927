"""``DbRepo[T]``: the generic repository (the seed's import path)."""

from __future__ import annotations

from viveka_db.repository.crud import CrudRepository
from viveka_db.repository.base import T

__all__ = ["DbRepo"]


class DbRepo(CrudRepository[T]):
    """Generic async repository of one entity type (Spring Data's ``JpaRepository``).

    ``class UserRepo(DbRepo[User])`` with ``super().__init__(User)`` (or no ``__init__``
    at all: the entity is read from ``DbRepo[User]``). Every method works from a
    ``@transactional`` method, inside a request, or called directly (its own transaction).
    """
