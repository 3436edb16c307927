"""The entities, repositories and service of ``viveka-db demo`` (tables ``demo_*``)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DbRepo,
    Propagation,
    VivekaDbBase,
    cache_evict,
    cacheable,
    entity,
    repository,
    table,
    transactional,
)

__all__ = ["AuditRepo", "Customer", "CustomerRepo", "DemoService", "Order", "OrderRepo"]


@entity
@table("demo_customers")
class Customer(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(255), unique=True)


@entity
@table("demo_orders")
class Order(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("demo_customers.id"))
    item: Mapped[str] = mapped_column(String(100))
    cents: Mapped[int]


@entity
@table("demo_audit")
class AuditEntry(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(200))


@repository
class CustomerRepo(DbRepo[Customer]):
    @cacheable(key_prefix="demo_customer", ttl=60)
    async def get(self, customer_id: int) -> Customer | None:
        """Cache-aside: the entity comes back from the cache as a detached copy."""
        return await self.get_by_id(customer_id)

    @transactional
    @cache_evict(key_prefix="demo_customer")
    async def rename(self, customer_id: int, name: str) -> None:
        """Evicts the prefix after the transaction commits (not at all on rollback)."""
        customer = await self.get_by_id(customer_id)
        if customer is not None:
            customer.name = name


@repository
class OrderRepo(DbRepo[Order]):
    @transactional(read_only=True)
    async def total_cents(self, customer_id: int) -> int:
        stmt = select(func.coalesce(func.sum(Order.cents), 0)).where(
            Order.customer_id == customer_id
        )
        return int(await self.db.scalar(stmt) or 0)


@repository
class AuditRepo(DbRepo[AuditEntry]):
    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def record(self, event: str) -> None:
        """Commits on its own, even when the caller's transaction later rolls back."""
        await self.insert_all([AuditEntry(event=event)])


class DemoService:
    """A service: several repository calls in one ``@transactional`` method."""

    def __init__(self) -> None:
        self.customers = CustomerRepo()
        self.orders = OrderRepo()
        self.audit = AuditRepo()

    @transactional
    async def register(self, name: str, email: str) -> Customer:
        await self.audit.record(f"registering {email}")
        [customer] = await self.customers.insert_all([Customer(name=name, email=email)])
        return customer

    @transactional
    async def place_order(self, customer_id: int, item: str, cents: int) -> Order:
        # REQUIRES_NEW first: SQLite has one writer at a time, so a new transaction that
        # writes while this one holds the write lock would wait for it (server databases don't).
        await self.audit.record(f"order attempt: {item}")
        [order] = await self.orders.insert_all(
            [Order(customer_id=customer_id, item=item, cents=cents)]
        )
        if cents <= 0:
            raise ValueError(f"an order must cost something, got {cents} cents")
        return order
