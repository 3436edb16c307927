"""Soft delete: which rows a repository sees, and ``soft_delete`` / ``restore``.

Soft-deleted rows are hidden by the session's row filter
(:mod:`viveka_db.tenancy.filters`), on every statement and relationship load, unless
``with include_deleted():`` is active. A repository *view* changes that for its own
statements: ``repo.with_deleted()`` sees all rows and ``repo.only_deleted()`` only deleted
ones. A view is a shallow copy that shares everything else with ``repo``, so every
method, derived queries included, honours it without extra parameters; its statements
carry an execution option that lets the filter show deleted rows in that statement.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Self

from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.base.mixins import SoftDeleteMixin
from viveka_db.base.types import utc_now
from viveka_db.decorator.transactional import transactional
from viveka_db.errors import EntityDefinitionError
from viveka_db.repository.base import RepositoryBase, T
from viveka_db.tenancy.context import deleted_rows_visible
from viveka_db.tenancy.filters import DELETED_ROWS_OPTION, related_criteria
from viveka_db.tenancy.writes import visible_to_tenant

__all__ = ["DeletedRows", "SoftDeleteRepository"]

DeletedRows = Literal["exclude", "include", "only"]


class SoftDeleteRepository(RepositoryBase[T]):
    """Row visibility for entities with :class:`~viveka_db.SoftDeleteMixin`."""

    _deleted_rows: DeletedRows = "exclude"
    """Which rows this view sees; change it with :meth:`with_deleted` / :meth:`only_deleted`."""

    @property
    def _soft_deletes(self) -> bool:
        """Whether the entity has ``deleted_at`` (``SoftDeleteMixin``)."""
        return issubclass(self.model, SoftDeleteMixin)

    def with_deleted(self) -> Self:
        """A view of this repository that also sees soft-deleted rows."""
        return self._view("include")

    def only_deleted(self) -> Self:
        """A view of this repository that sees only soft-deleted rows."""
        self._require_soft_delete("only_deleted()")
        return self._view("only")

    def _view(self, mode: DeletedRows) -> Self:
        view = copy.copy(self)
        view._deleted_rows = mode
        return view

    def _visibility_criteria(self) -> list[ColumnElement[bool]]:
        """The ``WHERE`` criteria this view adds to the session's row filter.

        Only ``only_deleted()`` needs one (``deleted_at IS NOT NULL``); hiding deleted rows
        is the row filter's job.
        """
        if self._deleted_rows != "only" or not self._soft_deletes:
            return []
        column: InstrumentedAttribute[Any] = getattr(self.model, "deleted_at")  # noqa: B009
        return [column.is_not(None)]

    def _view_options(self) -> dict[str, Any]:
        """The execution options of this view's statements (shows deleted rows if it does)."""
        return {} if self._deleted_rows == "exclude" else {DELETED_ROWS_OPTION: "include"}

    def _exists_criteria(self) -> list[ColumnElement[bool]]:
        """Every criterion of this view as plain ``WHERE`` terms, tenant included, for an
        ``EXISTS`` the row filter may not reach (build and run it in one go)."""
        shown = self._deleted_rows != "exclude"
        return [*related_criteria(self.model, include_deleted=shown), *self._visibility_criteria()]

    def _is_visible(self, instance: object) -> bool:
        """Whether a loaded ``instance`` belongs to this view (and the current tenant)."""
        if not visible_to_tenant(instance):
            return False
        if self._deleted_rows == "include" or not self._soft_deletes:
            return True
        deleted = getattr(instance, "deleted_at", None) is not None
        if self._deleted_rows == "only":
            return deleted
        return not deleted or deleted_rows_visible()

    def _require_soft_delete(self, what: str) -> None:
        if not self._soft_deletes:
            raise EntityDefinitionError(
                f"{what} needs soft delete, but {self.model.__name__} has no deleted_at; "
                "add SoftDeleteMixin to the entity"
            )

    @transactional
    async def soft_delete(self, id: Any) -> bool:
        """Mark the row deleted (``deleted_at`` = now); ``False`` if absent or already deleted.

        Goes through the ORM, so ``updated_at`` moves and a versioned entity's version is
        checked and bumped like any update.
        """
        self._require_soft_delete("soft_delete()")
        instance: Any = await self._load_by_key(id)
        if instance is None or instance.deleted_at is not None:
            return False
        instance.deleted_at = utc_now()
        await self.db.flush()
        return True

    @transactional
    async def restore(self, id: Any) -> bool:
        """Undo :meth:`soft_delete`; ``False`` if the row is absent or not deleted."""
        self._require_soft_delete("restore()")
        instance: Any = await self._load_by_key(id, {DELETED_ROWS_OPTION: "include"})
        if instance is None or instance.deleted_at is None:
            return False
        instance.deleted_at = None
        await self.db.flush()
        return True
