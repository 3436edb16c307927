"""PostgreSQL ``COPY`` specifics of ``insert_all``: shared timestamps, drawn keys.

A shared timestamp copied as one integer stores what the driver's own codec stores.

``insert_all`` on PostgreSQL encodes a timestamp column whose rows all share one value as
the ``int8`` it travels as (:mod:`viveka_db.repository.pg_copy_codecs`), through asyncpg
internals on the releases verified here. These tests are what "verified" means: for every
kind of value, the codec path and asyncpg's public ``copy_records_to_table`` leave the
same rows, and values the driver treats specially never take the codec path.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, String, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from tests.backends import postgres_driver
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    IntPKMixin,
    TimestampMixin,
    VivekaDbBase,
    compat,
    table,
)
from viveka_db.repository import pg_copy_codecs
from viveka_db.repository.pg_copy_codecs import codec_statement, timestamp_microseconds

pytestmark = [
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
    pytest.mark.skipif(
        postgres_driver() != "asyncpg",
        reason="asyncpg's binary codecs (psycopg copies text rows: tests/repository/test_bulk.py)",
    ),
]

NEW_YORK = ZoneInfo("America/New_York")
VALUES = [
    datetime.now(UTC),
    datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-8))),
    datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK),  # the hour that repeats: first pass
    datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NEW_YORK),  # and the second
    datetime(2000, 1, 1, tzinfo=UTC),  # zero
    datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # just below it
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2, 1, 2, tzinfo=UTC),
    datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 3, 10, 2, 30),  # naive: local time for timestamptz
    datetime(1969, 7, 20, 20, 17, 40),
]
SPECIAL = [datetime.max, datetime.min, datetime.max.replace(tzinfo=UTC)]
"""Values asyncpg maps to ``infinity``/``-infinity``: left to its own codec."""
ROWS = 3
NAIVE = datetime(2024, 7, 4, 9, 15, 30, 250_000)  # for the naive column


@table("copy_codec_rows")
class CodecRow(VivekaDbBase, IntPKMixin, TimestampMixin):
    name: Mapped[str] = mapped_column(String(20))
    local_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))


class CodecRowRepo(DbRepo[CodecRow]):
    pass


@pytest.fixture
async def driver(backend_url: str) -> AsyncIterator[Any]:
    """An asyncpg connection in a transaction with two empty tables of both timestamp types."""
    engine = create_async_engine(backend_url)
    async with engine.connect() as conn:
        await conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE codec_a (id int, tz timestamptz, naive timestamp)"
        )
        await conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE codec_b (id int, tz timestamptz, naive timestamp)"
        )
        yield (await conn.get_raw_connection()).driver_connection
        await conn.rollback()
    await engine.dispose()


async def copy_both_ways(driver: Any, tz_value: Any, naive_value: Any) -> bool:
    """Copy ``ROWS`` rows sharing the values into ``codec_a`` the codec way (where it
    applies) and into ``codec_b`` the public way; whether the codec way was taken."""

    def columns() -> list[list[Any]]:
        return [list(range(ROWS)), [tz_value] * ROWS, [naive_value] * ROWS]

    taken = columns()
    codecs = await codec_statement(
        driver,
        table_sql="codec_a",
        names_sql=["id", "tz", "naive"],
        columns=taken,
        shared=[1, 2],
    )
    if codecs is None:
        await driver.copy_records_to_table("codec_a", records=zip(*taken, strict=True))
    else:
        await compat.copy_with_codecs(
            driver,
            copy_sql="COPY codec_a (id, tz, naive) FROM STDIN (FORMAT binary)",
            codecs=codecs,
            records=zip(*taken, strict=True),
        )
    await driver.copy_records_to_table("codec_b", records=zip(*columns(), strict=True))
    return codecs is not None


async def stored(driver: Any, name: str) -> list[Any]:
    columns = "id, tz, naive, tz::text, naive::text"
    rows = await driver.fetch(f"SELECT {columns} FROM {name} ORDER BY id")
    return [tuple(row) for row in rows]


def test_the_codec_path_is_taken_on_the_verified_asyncpg_releases(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    class Driver:
        _protocol = type("Protocol", (), {"copy_in": lambda self: None})()

    verified = compat._minor(asyncpg.__version__) < compat.ASYNCPG_VERIFIED[1]
    assert compat.asyncpg_copy_codecs_verified(Driver()) is verified
    assert not compat.asyncpg_copy_codecs_verified(object())  # no protocol to call
    monkeypatch.setattr(asyncpg, "__version__", "0.33.0")
    assert not compat.asyncpg_copy_codecs_verified(Driver())
    monkeypatch.setattr(asyncpg, "__version__", "0.28.9")
    assert not compat.asyncpg_copy_codecs_verified(Driver())


async def test_every_kind_of_timestamp_is_stored_as_the_driver_stores_it(driver: Any) -> None:
    for value in VALUES:
        naive = value if value.tzinfo is None else NAIVE
        assert await copy_both_ways(driver, value, naive), value
    assert await stored(driver, "codec_a") == await stored(driver, "codec_b")


async def test_values_the_driver_treats_specially_keep_its_codec(driver: Any) -> None:
    for value in SPECIAL:
        assert timestamp_microseconds(value, "timestamptz") is None
        naive = value.replace(tzinfo=None)
        assert not await copy_both_ways(driver, value, naive)
    assert timestamp_microseconds(VALUES[0], "timestamp") is None  # aware for a naive column
    assert timestamp_microseconds(VALUES[0].date(), "timestamptz") is None
    rows = await stored(driver, "codec_a")
    assert rows == await stored(driver, "codec_b")
    assert {row[3] for row in rows} == {"infinity", "-infinity"}


async def test_an_aware_value_for_a_naive_column_fails_as_the_driver_fails(driver: Any) -> None:
    """Only the ``timestamptz`` column is converted; the naive one keeps asyncpg's codec,
    which refuses an aware value with the error it gives without the conversion."""
    errors: list[type[BaseException]] = []
    for name in ("codec_a", "codec_b"):
        try:
            async with driver.transaction():
                if name == "codec_a":
                    await copy_both_ways(driver, VALUES[0], VALUES[0])
                else:
                    await driver.copy_records_to_table(name, records=[(0, VALUES[0], VALUES[0])])
        except Exception as exc:
            errors.append(type(exc))
    assert len(errors) == 2 and errors[0] is errors[1]


async def test_insert_all_stores_the_same_rows_either_way(
    db: DatabaseSessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 entities (the ``COPY`` path) sharing ``created_at``/``updated_at`` (the statement
    timestamp) and a naive local time are stored as the entities hold them, with the codec
    path and without it."""
    pg_copy = importlib.import_module("viveka_db.repository.pg_copy")
    original = pg_copy.codec_statement
    taken: list[bool] = []

    async def watched(*args: Any, **kwargs: Any) -> Any:
        statement = await original(*args, **kwargs)
        taken.append(statement is not None)
        return statement

    monkeypatch.setattr(pg_copy, "codec_statement", watched)
    repo = CodecRowRepo()
    local = datetime(2025, 1, 2, 3, 4, 5, 678_901)
    for verified in (True, False):
        monkeypatch.setattr(
            pg_copy_codecs, "asyncpg_copy_codecs_verified", lambda driver, v=verified: v
        )
        inserted = await repo.insert_all(
            [CodecRow(name=f"r{i}", local_at=local) for i in range(600)]
        )
        first = inserted[0].created_at
        assert all(row.created_at is first and row.updated_at is first for row in inserted)
        async with db.engine.connect() as conn:
            rows = await rows_of(conn, {row.id for row in inserted})
        assert rows == [(row.id, row.name, first, first, local) for row in inserted]
    assert taken == [True, False]


async def rows_of(conn: AsyncConnection, ids: set[int]) -> list[tuple[Any, ...]]:
    columns = (CodecRow.id, CodecRow.name, CodecRow.created_at, CodecRow.updated_at)
    statement = (
        select(*columns, CodecRow.local_at).where(CodecRow.id.in_(ids)).order_by(CodecRow.id)
    )
    return [tuple(row) for row in (await conn.execute(statement)).all()]


@table("copy_stepped_rows")
class SteppedRow(VivekaDbBase, IntPKMixin):
    name: Mapped[str] = mapped_column(String(20))


class SteppedRowRepo(DbRepo[SteppedRow]):
    pass


async def test_copy_takes_keys_that_are_not_one_run(db: DatabaseSessionFactory) -> None:
    """``COPY``'s keys are drawn in one query that sends back only the lowest and highest
    when they are one unbroken run; a sequence stepping by 7 (as another session drawing
    meanwhile does) gets every key back, and every row gets one of them."""
    async with db.engine.begin() as conn:
        sequence = await conn.scalar(
            text("SELECT pg_get_serial_sequence('copy_stepped_rows', 'id')")
        )
        await conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} INCREMENT BY 7")
    repo = SteppedRowRepo()
    try:
        inserted = await repo.insert_all([SteppedRow(name=f"s{i}") for i in range(600)])
    finally:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")
    ids = [row.id for row in inserted]
    assert [later - earlier for earlier, later in itertools.pairwise(ids)] == [7] * 599
    assert {row.id: row.name for row in await repo.all()} == {row.id: row.name for row in inserted}
    more = await repo.insert_all([SteppedRow(name=f"t{i}") for i in range(600)])
    assert [row.id for row in more] == list(range(ids[-1] + 1, ids[-1] + 601))  # one run
