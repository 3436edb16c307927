"""Entities the tooling tests hand to the CLI (``--models tests.tooling.tool_models``)."""

from __future__ import annotations

import datetime
import decimal
import enum

from sqlalchemy import Enum, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import VivekaDbBase, entity, table


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"


@entity
@table("tool_people")
class ToolPerson(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    nickname: Mapped[str | None] = mapped_column(String(30))
    # not a native PostgreSQL ENUM: SQLAlchemy's metadata.drop_all(tables=[...]) drops every
    # native enum type of the shared metadata, which breaks other tests' partial drops
    tier: Mapped[Tier] = mapped_column(Enum(Tier, native_enum=False, length=10), default=Tier.FREE)
    balance: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2), default=decimal.Decimal("0"))
    active: Mapped[bool] = mapped_column(default=True)
    born: Mapped[datetime.date | None]


@entity
@table("tool_notes")
class ToolNote(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("tool_people.id"))
    text: Mapped[str] = mapped_column(String(200))
