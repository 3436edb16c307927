"""Operator views of the outbox: counts by status, and requeueing dead events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from viveka_db.base.types import utc_now
from viveka_db.outbox.claims import requeue_dead
from viveka_db.outbox.table import PENDING, OutboxRecord

if TYPE_CHECKING:
    from viveka_db.session.db_session import DatabaseSessionFactory

__all__ = ["OutboxStatus", "outbox_status", "requeue_dead_events"]


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    counts: dict[str, int]
    """Events by ``status`` (``pending``, ``delivered``, ``dead``)."""
    oldest_pending_seconds: float | None
    """Age of the oldest pending event, or ``None`` when none is pending."""


async def outbox_status(factory: DatabaseSessionFactory) -> OutboxStatus:
    table = OutboxRecord.__table__
    async with factory.engine.connect() as conn:
        counts = await conn.execute(select(table.c.status, func.count()).group_by(table.c.status))
        by_status: dict[str, int] = {status: count for status, count in counts}
        oldest = await conn.scalar(
            select(OutboxRecord.created_at)
            .where(OutboxRecord.status == PENDING)
            .order_by(OutboxRecord.seq)
            .limit(1)
        )
    age = None if oldest is None else (utc_now() - oldest).total_seconds()
    return OutboxStatus(by_status, age)


async def requeue_dead_events(factory: DatabaseSessionFactory) -> int:
    async with factory.engine.begin() as conn:
        return await requeue_dead(conn, utc_now())
