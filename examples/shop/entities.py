"""The shop's entities: a user has orders."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import IntPKMixin, TimestampMixin, VivekaDbBase, entity, table


class OrderStatus(enum.Enum):
    PLACED = "placed"
    CONFIRMED = "confirmed"


@entity
@table("shop_users")
class User(IntPKMixin, TimestampMixin, VivekaDbBase):
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(255), unique=True)


@entity
@table("shop_orders")
class Order(IntPKMixin, TimestampMixin, VivekaDbBase):
    user_id: Mapped[int] = mapped_column(ForeignKey("shop_users.id"), index=True)
    item: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(default=1)
    # a VARCHAR rather than a native ENUM type: portable, and new states need no migration
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, native_enum=False, length=20), default=OrderStatus.PLACED
    )
