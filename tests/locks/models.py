"""Entities of the lock tests (tables ``lock_*``): a work queue and an account."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from viveka_db import DbRepo, IntPKMixin, VivekaDbBase, entity, table


@entity
@table("lock_owners")
class Owner(VivekaDbBase, IntPKMixin):
    name: Mapped[str] = mapped_column(String(40))


@entity
@table("lock_jobs")
class Job(VivekaDbBase, IntPKMixin):
    status: Mapped[str] = mapped_column(String(20), default="pending")
    worker: Mapped[str | None] = mapped_column(String(20), default=None)
    balance: Mapped[int] = mapped_column(default=0)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("lock_owners.id"), default=None)
    owner: Mapped[Owner | None] = relationship(lazy="raise")


@dataclass
class JobStatus:
    id: int
    status: str


class JobRepo(DbRepo[Job]):
    async def find_by_status(self, status: str) -> Job | None: ...

    async def find_all_by_status(self, status: str) -> list[Job]: ...

    async def find_all_by_owner_name(self, name: str) -> list[Job]: ...

    async def count_by_status(self, status: str) -> int: ...
