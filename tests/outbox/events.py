"""Events and helpers shared by the outbox tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from viveka_db import DatabaseSessionFactory
from viveka_db.outbox.table import OutboxRecord


class Colour(Enum):
    RED = "red"


@dataclass
class OrderPlaced:
    order_id: int
    total: Decimal
    placed_at: datetime | None = None
    colour: Colour = Colour.RED


@dataclass
class PriorityOrderPlaced(OrderPlaced):
    __event_type__ = "order.priority"
    __aggregate_type__ = "order"


class UserRenamed(BaseModel):
    user_id: int
    name: str


@dataclass
class Numbered:
    """The relay tests' event: its key and its place in that key's order."""

    key: str
    n: int


async def outbox_rows(factory: DatabaseSessionFactory) -> list[Any]:
    async with factory.engine.connect() as conn:
        return list(
            (await conn.execute(select(OutboxRecord.__table__).order_by(OutboxRecord.seq))).all()
        )
