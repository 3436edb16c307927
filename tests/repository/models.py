"""Entities of the repository tests (tables ``repo_*``), in the styles users write."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DbRepo,
    IntPKMixin,
    SoftDeleteMixin,
    TimestampMixin,
    UUIDPKMixin,
    VersionMixin,
    VivekaDbBase,
    entity,
    table,
)


class Tier(enum.Enum):
    free = "free"
    pro = "pro"


@entity
@table("repo_users")
class User(VivekaDbBase, IntPKMixin, TimestampMixin, SoftDeleteMixin):
    email: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    age: Mapped[int | None] = mapped_column(default=None)
    is_active: Mapped[bool] = mapped_column(default=True)
    tier: Mapped[Tier] = mapped_column(default=Tier.free)


@entity
@table("repo_docs")
class Doc(VivekaDbBase, UUIDPKMixin, TimestampMixin, VersionMixin):
    """Classic ``Column`` style mixed with mixins."""

    title = Column(String(100), nullable=False)
    views = Column(Integer, nullable=False, default=0)


class Item(IntPKMixin, VivekaDbBase):
    """Mixin listed before the base, ``__tablename__`` instead of ``@table``."""

    __tablename__ = "repo_items"
    __table_args__ = (UniqueConstraint("sku", "shop"),)

    sku: Mapped[str] = mapped_column(String(40))
    shop: Mapped[str] = mapped_column(String(40))
    qty: Mapped[int] = mapped_column(default=0)
    note: Mapped[str | None] = mapped_column(String(200), default=None)
    seen_at: Mapped[datetime | None] = mapped_column(default=None)


@entity
@table("repo_accounts")
class Account(VivekaDbBase, IntPKMixin, TimestampMixin, VersionMixin, SoftDeleteMixin):
    owner: Mapped[str] = mapped_column(String(80))
    balance: Mapped[int] = mapped_column(default=0)


@table("repo_mixed")
class Mixed(VivekaDbBase, UUIDPKMixin, TimestampMixin, VersionMixin):
    """``@table`` without ``@entity``, classic and annotated columns side by side."""

    label = Column(String(20))
    extra: Mapped[int] = mapped_column(default=0)


class UserRepo(DbRepo[User]):
    pass


class DocRepo(DbRepo[Doc]):
    pass


class ItemRepo(DbRepo[Item]):
    pass


class AccountRepo(DbRepo[Account]):
    pass


@entity
@table("repo_tickets")
class Ticket(VivekaDbBase):
    """Nothing but a generated key: every insert is ``DEFAULT VALUES``."""

    id = Column(Integer, primary_key=True)


def _label_slug(context: Any) -> str:
    """A column default that reads the row being inserted, as SQLAlchemy lets it."""
    row = context.get_current_parameters()
    return f"{row['kind']}:{row['name'].lower()}"


@table("repo_labels")
class Label(VivekaDbBase, IntPKMixin):
    """``slug`` defaults from the row's other values (``kind`` has a default of its own)."""

    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), default="tag")
    slug: Mapped[str] = mapped_column(String(60), default=_label_slug)
