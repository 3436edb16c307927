"""Entities of the telemetry tests (table names start with ``tel_``)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String

from viveka_db import DbRepo, VivekaDbBase, entity, repository, table


@entity
@table("tel_gadgets")
class Gadget(VivekaDbBase):
    id = Column(Integer, primary_key=True)
    name = Column(String(80), nullable=False)
    qty = Column(Integer, nullable=False, default=0)


@repository
class GadgetRepo(DbRepo[Gadget]):
    def __init__(self) -> None:
        super().__init__(Gadget)
