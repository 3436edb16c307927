"""Tenant-scoped entities for the tenancy tests (tables ``ten_*``).

``Writer`` 1-n ``Note`` (a writer per tenant); ``Note`` 1-n ``Remark`` (soft delete);
``Note`` n-m ``Label`` (soft delete); ``Counter`` for bulk paths and ``Keyed`` (explicit
primary key, a unique code) for upserts. Every one of them is tenant-scoped.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from viveka_db import (
    AuditMixin,
    DbRepo,
    IntPKMixin,
    SoftDeleteMixin,
    TenantMixin,
    TimestampMixin,
    VivekaDbBase,
    entity,
    table,
)

note_labels = Table(
    "ten_note_labels",
    VivekaDbBase.metadata,
    Column("note_id", ForeignKey("ten_notes.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("ten_labels.id", ondelete="CASCADE"), primary_key=True),
)


@entity
@table("ten_writers")
class Writer(VivekaDbBase, IntPKMixin, TenantMixin):
    name: Mapped[str] = mapped_column(String(40))


@entity
@table("ten_labels")
class Label(VivekaDbBase, IntPKMixin, TenantMixin, SoftDeleteMixin):
    name: Mapped[str] = mapped_column(String(40))


@entity
@table("ten_notes")
class Note(VivekaDbBase, IntPKMixin, TenantMixin, AuditMixin, SoftDeleteMixin, TimestampMixin):
    title: Mapped[str] = mapped_column(String(80))
    writer_id: Mapped[int | None] = mapped_column(ForeignKey("ten_writers.id"), default=None)
    writer: Mapped[Writer | None] = relationship(lambda: Writer)
    remarks: Mapped[list[Remark]] = relationship(
        lambda: Remark, back_populates="note", order_by=lambda: Remark.id, passive_deletes=True
    )
    labels: Mapped[list[Label]] = relationship(
        lambda: Label, secondary=note_labels, order_by=lambda: Label.id
    )


@entity
@table("ten_remarks")
class Remark(VivekaDbBase, IntPKMixin, TenantMixin, SoftDeleteMixin):
    note_id: Mapped[int] = mapped_column(ForeignKey("ten_notes.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(String(80))
    note: Mapped[Note] = relationship(lambda: Note, back_populates="remarks")


@entity
@table("ten_counters")
class Counter(VivekaDbBase, IntPKMixin, TenantMixin, AuditMixin):
    n: Mapped[int] = mapped_column(Integer())


@entity
@table("ten_keyed")
class Keyed(VivekaDbBase, TenantMixin, AuditMixin, TimestampMixin):
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    name: Mapped[str] = mapped_column(String(40))


class NoteRepo(DbRepo[Note]):
    async def find_all_by_remarks_body(self, body: str) -> list[Note]: ...
    async def find_all_by_writer_name(self, name: str) -> list[Note]: ...
    async def exists_by_labels_name(self, name: str) -> bool: ...
    async def count_by_title(self, title: str) -> int: ...
    async def delete_by_title(self, title: str) -> int: ...


class RemarkRepo(DbRepo[Remark]):
    pass


class CounterRepo(DbRepo[Counter]):
    pass


class KeyedRepo(DbRepo[Keyed]):
    pass
