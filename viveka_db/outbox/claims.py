"""The relay's SQL: claim a batch in key order, then record what each delivery did.

A batch is claimed inside a transaction that stays open while it is delivered:
``SELECT ... WHERE status = 'pending' ORDER BY seq LIMIT n FOR UPDATE SKIP LOCKED`` on
PostgreSQL and MariaDB/MySQL, so concurrent relays take disjoint rows, and a relay that dies
releases its rows with its connection (they are delivered again: at least once). The claim
keeps only the rows that may go now: for each key, the claimed rows before the first
*other* pending row of that key (one another relay holds, or one waiting for its retry).
SQLite has one writer: the claim transaction takes the write lock at once
(``BEGIN IMMEDIATE``), so relays on one SQLite file take turns.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from viveka_db.dialects import adapter_for
from viveka_db.outbox.events import OutboxEvent
from viveka_db.outbox.table import DEAD, DELIVERED, ERROR_LENGTH, PENDING, OutboxRecord

__all__ = [
    "Claimed",
    "backoff",
    "claim",
    "delete_delivered",
    "isolation_for",
    "mark_delivered",
    "mark_failed",
    "requeue_dead",
    "retry_time",
]

_table = cast("Table", OutboxRecord.__table__)
_c = _table.c


class Claimed:
    """A claimed row: the event to deliver and what the relay needs to record the outcome."""

    __slots__ = ("event", "seq")

    def __init__(self, row: Row[Any]) -> None:
        self.seq: int = row.seq
        self.event = OutboxEvent(
            id=row.id,
            type=row.type,
            aggregatetype=row.aggregatetype,
            aggregateid=row.aggregateid,
            payload=row.payload,
            headers=dict(row.headers or {}),
            created_at=row.created_at,
            attempt=row.attempts + 1,
        )


def isolation_for(dialect: str) -> str:
    """READ COMMITTED on the servers (no gap locks that would block publishers on MariaDB);
    SERIALIZABLE on SQLite, which makes the connection take the write lock at BEGIN."""
    return "SERIALIZABLE" if adapter_for(dialect).single_writer else "READ COMMITTED"


async def claim(conn: AsyncConnection, size: int, now: datetime) -> tuple[list[Claimed], int]:
    """Lock up to ``size`` due rows; returns those deliverable now (in ``seq`` order) and
    how many were locked."""
    query = (
        select(_table)
        .where(_c.status == PENDING, _c.next_attempt_at <= now)
        .order_by(_c.seq)
        .limit(size)
    )
    if adapter_for(conn.dialect).supports_skip_locked:
        query = query.with_for_update(skip_locked=True)
    rows = [Claimed(row) for row in (await conn.execute(query)).all()]
    if not rows:
        return rows, 0
    keys = {row.event.aggregateid for row in rows}
    held = {row.seq for row in rows}
    others = await conn.execute(
        select(_c.aggregateid, func.min(_c.seq))
        .where(
            _c.status == PENDING,
            _c.aggregateid.in_(keys),
            _c.seq <= rows[-1].seq,
            _c.seq.not_in(held),
        )
        .group_by(_c.aggregateid)
    )
    first_other: dict[str, int] = {key: seq for key, seq in others}
    ready = [r for r in rows if r.seq < first_other.get(r.event.aggregateid, math.inf)]
    return ready, len(rows)


async def mark_delivered(
    conn: AsyncConnection, seqs: Sequence[int], now: datetime, *, delete_rows: bool
) -> None:
    if not seqs:
        return
    if delete_rows:
        await conn.execute(delete(_table).where(_c.seq.in_(seqs)))
        return
    await conn.execute(
        update(_table)
        .where(_c.seq.in_(seqs))
        .values(status=DELIVERED, published_at=now, attempts=_c.attempts + 1, last_error=None)
    )


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry ``attempt + 1``: ``base * 2**(attempt-1)``, capped, with jitter."""
    delay = min(cap, base * 2.0 ** min(attempt - 1, 30))
    return delay * (0.5 + random.random() / 2)


async def mark_failed(
    conn: AsyncConnection, claimed: Claimed, error: str, next_attempt_at: datetime, *, dead: bool
) -> None:
    await conn.execute(
        update(_table)
        .where(_c.seq == claimed.seq)
        .values(
            status=DEAD if dead else PENDING,
            attempts=claimed.event.attempt,
            next_attempt_at=next_attempt_at,
            last_error=error[:ERROR_LENGTH],
        )
    )


async def delete_delivered(conn: AsyncConnection, before: datetime) -> int:
    """Delete rows delivered before ``before``; returns how many."""
    result = await conn.execute(
        delete(_table).where(_c.status == DELIVERED, _c.published_at < before)
    )
    return result.rowcount


async def requeue_dead(conn: AsyncConnection, now: datetime) -> int:
    """Make every dead event pending again (due now, attempts reset); returns how many."""
    result = await conn.execute(
        update(_table)
        .where(_c.status == DEAD)
        .values(status=PENDING, attempts=0, next_attempt_at=now, last_error=None)
    )
    return result.rowcount


def retry_time(now: datetime, attempt: int, base: float, cap: float) -> datetime:
    return now + timedelta(seconds=backoff(attempt, base, cap))
