"""The one table of the topology tests."""

from __future__ import annotations

from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import VivekaDbBase, entity, table


@entity
@table("topo_note")
class Note(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column()
