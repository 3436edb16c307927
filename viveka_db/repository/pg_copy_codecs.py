"""Binary ``COPY`` of a timestamp that every row shares, encoded once instead of per row.

asyncpg's binary ``COPY`` encodes each value with the codec of its column's type. For
``timestamp``/``timestamptz`` that codec does datetime arithmetic per value (about 0.5 us):
at 100,000 rows with ``created_at`` and ``updated_at`` it is nine tenths of the client's
whole ``COPY`` work. ``insert_all`` fills both with one statement timestamp, the same object
in every row. Both types travel as one int64, microseconds since 2000-01-01, and the
``int8`` codec writes exactly those eight bytes. So such a column's value is turned into
that integer once, as the driver's timestamp codec would compute it, and the column is
encoded with ``int8``'s codec: the same bytes reach the server for a fraction of the work.

The table's real column types are asked from the server first (``timestamp`` and
``timestamptz`` convert a value differently), and anything the driver's own codec would
treat specially (infinity, a ``date``, an aware value for a naive column) keeps that codec.
Copying with codecs of a statement of our choosing takes asyncpg internals
(:func:`viveka_db.compat.copy_with_codecs`),
only on the releases the suite verifies; any other release copies the datetimes as they
are. ``tests/repository/test_pg_copy_codecs.py`` checks that both store the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Dialect

from viveka_db.compat import asyncpg_copy_codecs_verified
from viveka_db.repository.bulk_plan import all_same
from viveka_db.repository.column_types import base_type

__all__ = ["codec_statement", "shared_timestamp_columns", "timestamp_microseconds"]

_PG_EPOCH = datetime(2000, 1, 1)  # the naive epoch of ``timestamp``
_PG_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def timestamp_microseconds(value: object, pg_type: str) -> int | None:
    """The int64 binary ``COPY`` carries for ``value`` in a ``pg_type`` column, computed as
    asyncpg's timestamp codecs compute it; ``None`` where that codec does anything else.

    ``timestamptz``: the value converted to UTC (a naive one read as local time, as
    ``datetime.astimezone`` reads it). ``timestamp``: naive values only (the codec refuses
    aware ones). Years 1 and 9999 are left to the codec, which maps its range ends to
    ``-infinity``/``infinity``.
    """
    if not isinstance(value, datetime) or value.year in (1, 9999):
        return None
    if pg_type == "timestamptz":
        return (value.astimezone(UTC) - _PG_EPOCH_UTC) // _MICROSECOND
    if pg_type == "timestamp" and value.tzinfo is None:
        return (value - _PG_EPOCH) // _MICROSECOND
    return None


def shared_timestamp_columns(
    dialect: Dialect, columns: Sequence[Column[Any]], values: Sequence[list[Any]]
) -> list[int]:
    """Positions of the datetime columns whose values are one datetime shared by all rows."""
    return [
        position
        for position, (column, column_values) in enumerate(zip(columns, values, strict=True))
        if column_values
        and isinstance(column_values[0], datetime)
        and isinstance(base_type(column.type, dialect), DateTime)
        and all_same(column_values)
    ]


async def codec_statement(
    driver: Any,
    *,
    table_sql: str,
    names_sql: list[str],
    columns: list[list[Any]],
    shared: list[int],
) -> Any | None:
    """The prepared statement whose result columns give the codecs to ``COPY`` ``columns``
    with, a ``shared`` timestamp column's values replaced by their one integer; ``None``
    (``columns`` untouched) when no column qualifies or this asyncpg release is not
    verified: the values are then copied as they are.

    ``table_sql`` and ``names_sql`` are the quoted table and column names.
    """
    if not shared or not asyncpg_copy_codecs_verified(driver):
        return None
    select_list = ", ".join(names_sql)
    probe = await driver.prepare(f"SELECT {select_list} FROM {table_sql} LIMIT 1")
    pg_types = [attribute.type.name for attribute in probe.get_attributes()]
    codec_list = list(names_sql)
    converted: dict[int, int] = {}
    for position in shared:
        micros = timestamp_microseconds(columns[position][0], pg_types[position])
        if micros is not None:
            converted[position] = micros
            codec_list[position] = f"NULL::int8 AS {names_sql[position]}"
    if not converted:
        return None
    statement = await driver.prepare(f"SELECT {', '.join(codec_list)} FROM {table_sql} LIMIT 1")
    for position, micros in converted.items():
        columns[position] = [micros] * len(columns[position])
    return statement
