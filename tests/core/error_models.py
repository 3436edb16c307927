"""Entities of the error-mapping tests (tables ``core_err_*``): one constraint of each kind."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import DbRepo, IntPKMixin, VersionMixin, VivekaDbBase, entity, table


@entity
@table("core_err_orgs")
class Org(VivekaDbBase):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


@entity
@table("core_err_users")
class Member(VivekaDbBase):
    """``email`` unique, ``name`` NOT NULL, ``org_id`` an immediate foreign key, ``age`` checked."""

    __table_args__ = (CheckConstraint("age >= 0", name="age_nonneg"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("core_err_orgs.id"), default=None)
    age: Mapped[int] = mapped_column(Integer, default=0)


@entity
@table("core_err_docs")
class Note(VivekaDbBase, IntPKMixin, VersionMixin):
    title: Mapped[str] = mapped_column(String(50))


class MemberRepo(DbRepo[Member]):
    pass


class NoteRepo(DbRepo[Note]):
    pass


UNIQUE_EMAIL = "uq_core_err_users_email"
FK_ORG = "fk_core_err_users_org_id_core_err_orgs"
CHECK_AGE = "ck_core_err_users_age_nonneg"
