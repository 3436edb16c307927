"""The outbox table: one row per published event, laid out after Debezium's outbox router.

``id``, ``aggregatetype``, ``aggregateid``, ``type`` and ``payload`` are the columns the
router reads (an existing Debezium or Kafka Connect pipeline can tail the table as it is);
``headers`` carries the W3C trace context of the publishing span. The relay's own state is
``status``, ``attempts``, ``next_attempt_at``, ``published_at`` and ``last_error``.

``seq`` is the primary key: an auto-increment that orders the events of one key. The table
belongs to :class:`~viveka_db.VivekaDbBase`'s metadata, so ``viveka-db db init``, the
``viveka-db outbox init`` command and Alembic autogenerate all create it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db.base.db_base import LIBRARY_TABLE, VivekaDbBase
from viveka_db.base.types import UTCDateTime, statement_utc_now

__all__ = [
    "DEAD",
    "DELIVERED",
    "ERROR_LENGTH",
    "KEY_LENGTH",
    "PENDING",
    "TABLE_NAME",
    "OutboxRecord",
]

TABLE_NAME: Final = "viveka_outbox"
PENDING: Final = "pending"
"""Not delivered yet (a failed attempt waits for ``next_attempt_at``)."""
DELIVERED: Final = "delivered"
"""``deliver`` returned; ``published_at`` says when."""
DEAD: Final = "dead"
"""Every allowed attempt failed: left for an operator (``viveka-db outbox requeue``)."""
KEY_LENGTH: Final = 255
"""The longest ``aggregateid`` (and ``type`` / ``aggregatetype``) the table stores."""
ERROR_LENGTH: Final = 500

_JSON = JSON()
"""``json`` on PostgreSQL (stored as written), ``JSON`` on MariaDB, text on SQLite."""


class OutboxRecord(VivekaDbBase):
    """One outbox row (the relay hands :class:`~viveka_db.outbox.OutboxEvent` to ``deliver``)."""

    __tablename__ = TABLE_NAME
    __table_args__ = (
        Index("ix_viveka_outbox_due", "status", "seq"),
        Index("ix_viveka_outbox_key", "aggregateid", "status", "seq"),
        {"info": {LIBRARY_TABLE: True}},
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), unique=True, default=uuid.uuid4)
    aggregatetype: Mapped[str] = mapped_column(String(KEY_LENGTH))
    aggregateid: Mapped[str] = mapped_column(String(KEY_LENGTH))
    type: Mapped[str] = mapped_column(String(KEY_LENGTH))
    payload: Mapped[Any] = mapped_column(_JSON)
    headers: Mapped[dict[str, str]] = mapped_column(_JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=statement_utc_now)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=statement_utc_now)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
