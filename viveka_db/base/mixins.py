"""Column mixins for entities: primary keys, timestamps, soft delete, optimistic locking.

They are plain classes, so they compose with each other and with ``VivekaDbBase`` in any
order, with ``@entity @table("x")`` and with classic ``Column`` attributes::

    @entity
    @table("users")
    class User(VivekaDbBase, IntPKMixin, TimestampMixin, SoftDeleteMixin):
        email: Mapped[str] = mapped_column(unique=True)

Defaults are Python-side (``default=`` / ``onupdate=``), so SQLAlchemy Core ``insert()``
and ``update()`` fill them as well as the ORM; the repository's bulk paths and upserts
apply them too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Integer, Uuid
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from viveka_db.base.types import UTCDateTime, statement_utc_now

__all__ = [
    "IntPKMixin",
    "SoftDeleteMixin",
    "TimestampMixin",
    "UUIDPKMixin",
    "VersionMixin",
]

_FIRST = -100
_LAST = 100


class IntPKMixin:
    """``id``: an auto-incrementing integer primary key.

    ``BIGINT`` on servers (tables outgrow 2**31), ``INTEGER`` on SQLite, where only an
    ``INTEGER PRIMARY KEY`` auto-increments.
    """

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
        sort_order=_FIRST,
    )


class UUIDPKMixin:
    """``id``: a UUID primary key generated in Python (native ``UUID`` where the DB has one).

    Generated client-side so the key is known before the INSERT: bulk inserts and Core
    ``insert()`` get one too, and no round trip is needed to learn it.
    """

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), primary_key=True, default=uuid.uuid4, sort_order=_FIRST
    )


class TimestampMixin:
    """``created_at`` and ``updated_at``: timezone-aware UTC, microsecond precision.

    Both are set on insert (to the same instant); ``updated_at`` moves on every update.
    An updating upsert keeps ``created_at`` and moves ``updated_at``.
    """

    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=statement_utc_now, nullable=False, sort_order=_LAST
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(),
        default=statement_utc_now,
        onupdate=statement_utc_now,
        nullable=False,
        sort_order=_LAST,
    )


class SoftDeleteMixin:
    """``deleted_at``: set instead of deleting the row.

    Every ORM statement of a library session leaves soft-deleted rows out, relationship
    loads included, unless ``with include_deleted():`` is active or a repository view asks
    (``repo.with_deleted()``, ``repo.only_deleted()``); ``repo.soft_delete(id)`` and
    ``repo.restore(id)`` flip it.
    """

    __viveka_soft_delete__: ClassVar[bool] = True

    deleted_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), default=None, nullable=True, index=True, sort_order=_LAST
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class VersionMixin:
    """``version``: optimistic locking through SQLAlchemy's ``version_id_col``.

    Every UPDATE/DELETE checks the version it loaded; if another transaction changed the
    row meanwhile, nothing is written and the repository raises
    :class:`~viveka_db.errors.OptimisticLockError`. An entity that declares its own
    ``__mapper_args__`` must include ``"version_id_col"`` itself.
    """

    version: Mapped[int] = mapped_column(Integer(), nullable=False, default=1, sort_order=_LAST)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]
