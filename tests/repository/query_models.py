"""Entities for specifications, filters, path sorting and factories (tables ``repo_q_*``).

``Writer`` 1-n ``Post`` (``writer``, required) and 1-n ``Post`` (``editor``, optional);
``Post`` 1-n ``Note``; ``Post`` n-m ``Label``. ``Writer.password_hash`` is the column an
API must never expose. Relationships name their classes by object (other modules map
classes of the same names).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, Enum, ForeignKey, Numeric, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from viveka_db import IntPKMixin, TimestampMixin, UTCDateTime, VivekaDbBase, entity, table

post_labels = Table(
    "repo_q_post_labels",
    VivekaDbBase.metadata,
    Column("post_id", ForeignKey("repo_q_posts.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("repo_q_labels.id", ondelete="CASCADE"), primary_key=True),
)


class Status(enum.Enum):
    draft = "draft"
    live = "live"


@entity
@table("repo_q_writers")
class Writer(VivekaDbBase, IntPKMixin):
    email: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str | None] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(100))
    age: Mapped[int | None] = mapped_column()
    joined: Mapped[datetime | None] = mapped_column(UTCDateTime())


@entity
@table("repo_q_labels")
class Label(VivekaDbBase, IntPKMixin):
    name: Mapped[str] = mapped_column(String(40), unique=True)


@entity
@table("repo_q_posts")
class Post(VivekaDbBase, IntPKMixin, TimestampMixin):
    title: Mapped[str] = mapped_column(String(120))
    views: Mapped[int] = mapped_column()
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    day: Mapped[date] = mapped_column()
    published: Mapped[bool] = mapped_column()
    status: Mapped[Status] = mapped_column(Enum(Status, native_enum=False, length=10))
    subtitle: Mapped[str | None] = mapped_column(String(120))
    writer_id: Mapped[int] = mapped_column(ForeignKey("repo_q_writers.id", ondelete="CASCADE"))
    editor_id: Mapped[int | None] = mapped_column(
        ForeignKey("repo_q_writers.id", ondelete="SET NULL")
    )
    writer: Mapped[Writer] = relationship(lambda: Writer, foreign_keys=[writer_id])
    editor: Mapped[Writer | None] = relationship(lambda: Writer, foreign_keys=[editor_id])
    notes: Mapped[list[Note]] = relationship(lambda: Note, passive_deletes=True)
    labels: Mapped[list[Label]] = relationship(lambda: Label, secondary=post_labels)


@entity
@table("repo_q_notes")
class Note(VivekaDbBase, IntPKMixin):
    post_id: Mapped[int] = mapped_column(ForeignKey("repo_q_posts.id", ondelete="CASCADE"))
    stars: Mapped[int] = mapped_column()
    body: Mapped[str] = mapped_column(String(200))
