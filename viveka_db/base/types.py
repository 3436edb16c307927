"""Column types that behave the same on PostgreSQL, MySQL/MariaDB and SQLite."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from viveka_db.dialects import adapter_for

__all__ = ["UTCDateTime", "statement_utc_now", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def statement_utc_now(context: Any) -> datetime:
    """``utc_now()`` taken once per statement.

    Every default of one INSERT (``created_at`` and ``updated_at`` of each row of an
    executemany) gets the same instant, so a fresh row has ``created_at == updated_at``,
    like ``now()`` in SQL.
    """
    if context is None:
        return utc_now()
    now: datetime | None = getattr(context, "_viveka_utc_now", None)
    if now is None:
        now = utc_now()
        with contextlib.suppress(AttributeError):  # no attributes allowed: per-row time
            context._viveka_utc_now = now
    return now


statement_utc_now.viveka_per_statement = True  # type: ignore[attr-defined]
"""Bulk paths may compute it once per statement instead of once per row."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp with microseconds on every backend.

    PostgreSQL stores ``timestamptz``. MySQL/MariaDB ``DATETIME`` has no zone and drops
    fractions unless declared ``DATETIME(6)``, and SQLite stores text, so on those the
    value is stored as naive UTC and comes back aware. Naive datetimes are refused: their
    zone is a guess, and a wrong guess shifts data silently.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(adapter_for(dialect).utc_datetime_type())

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} has no time zone; pass an aware one, "
                "e.g. datetime.now(UTC) or value.replace(tzinfo=UTC)"
            )
        utc: datetime = value.astimezone(UTC)
        return utc if adapter_for(dialect).stores_time_zones else utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
