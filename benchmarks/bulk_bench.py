"""Issue 6, target 5 (and issue 4): ``insert_all`` of 100,000 rows against the drivers' best.

PostgreSQL arms, interleaved in one process (the order rotates every round):

* ``asyncpg COPY``          ``copy_records_to_table`` of ready tuples: the physical limit;
* ``Core insert() dicts``   ``conn.execute(insert(table), list_of_dicts)`` (insertmanyvalues);
* ``insert_all dicts``      ``repo.insert_all(list_of_dicts)``: the entities are built by
                            the library inside the clock; keys and timestamps filled in,
                            entities persistent in the session (the reference);
* ``insert_all entities``   ``repo.insert_all(entities)`` of entities the caller built
                            before the clock (what building them costs is the difference);
* ``insert_all, driver codecs only``  the same with the shared timestamps encoded row by
                            row by asyncpg's own codec (what an unverified asyncpg release
                            gets: :mod:`viveka_db.repository.pg_copy_codecs`).

MariaDB: ``insert_all`` against aiomysql ``cursor.executemany`` (which rewrites to multi-row
``INSERT``s) and the Core insert, with 10,000 rows (``VIVEKA_BENCH_BULK_MARIADB_ROWS``).

Every arm gets its input built before the clock starts (dicts or entities for
``insert_all``, tuples for COPY and executemany, dicts for Core), inserts into an empty table
and commits; the table is emptied between arms. What an arm returns (``insert_all``'s
entities) is freed after the clock stops, as its input is: a caller keeps what it asked
for, and freeing 100,000 entities (about a third of the time of a ``COPY`` of them) is not
the insert's work. Targets, for ``insert_all`` of dicts (the
entities it returns included): >= the Core insert and >= 0.6x COPY on PostgreSQL, >= 0.9x
``executemany`` on MariaDB; the entity arms are reported. The table (``bench_bulk_<pid>``) is
dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from backends import MARIADB_URL, PG_URL, db_config, server_up
from harness import ArmResult, format_table, target_line
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    IntPKMixin,
    TimestampMixin,
    VivekaDbBase,
    table,
)
from viveka_db.repository import pg_copy_codecs

PG_ROWS = int(os.environ.get("VIVEKA_BENCH_BULK_ROWS", "100000"))
MARIADB_ROWS = int(os.environ.get("VIVEKA_BENCH_BULK_MARIADB_ROWS", "10000"))
ROUNDS = int(os.environ.get("VIVEKA_BENCH_BULK_ROUNDS", "3"))
PSYCOPG_URL = PG_URL.replace("+asyncpg://", "+psycopg://", 1)
WARMUP_FRACTION = 10
"""The warm-up round inserts a tenth of the rows: enough to fill pools and caches."""
COLUMNS = ["name", "email", "score", "created_at", "updated_at"]


TABLE = f"bench_bulk_{os.getpid()}"
"""Per process: concurrent runs (other checkouts, CI jobs) never share, empty or drop it."""


@table(TABLE)
class BulkRow(VivekaDbBase, IntPKMixin, TimestampMixin):
    name: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(128))
    score: Mapped[int] = mapped_column(default=0)


class BulkRepo(DbRepo[BulkRow]):
    pass


Prepare = Callable[[int], Any]
Run = Callable[[Any], Awaitable[object]]


def dict_rows(n: int) -> list[dict[str, Any]]:
    return [{"name": f"user {i}", "email": f"u{i}@example.com", "score": i} for i in range(n)]


def dict_rows_with_times(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{**row, "created_at": now, "updated_at": now} for row in dict_rows(n)]


def tuples(n: int, *, naive: bool = False) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    stamp = now.replace(tzinfo=None) if naive else now
    return [(f"user {i}", f"u{i}@example.com", i, stamp, stamp) for i in range(n)]


def naive_tuples(n: int) -> list[tuple[Any, ...]]:
    """MySQL ``DATETIME(6)`` takes naive UTC; the library's type converts, the driver does not."""
    return tuples(n, naive=True)


def entities(n: int) -> list[BulkRow]:
    return [BulkRow(**row) for row in dict_rows(n)]


async def empty(engine: AsyncEngine) -> None:
    """A fresh, empty table for every arm (``TRUNCATE``: no dead rows or index bloat left
    by the previous arm to slow the next one down)."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE TABLE {TABLE}")


async def run_arms(
    engine: AsyncEngine, rows: int, arms: dict[str, tuple[Prepare, Run]]
) -> list[ArmResult]:
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(-1, ROUNDS):  # round -1 warms up every arm
        shift = max(round_no, 0) % len(names)
        size = rows if round_no >= 0 else max(rows // WARMUP_FRACTION, 1)
        for name in names[shift:] + names[:shift]:
            prepare, run = arms[name]
            data = prepare(size)
            await empty(engine)
            start = time.perf_counter()
            kept = await run(data)
            elapsed = time.perf_counter() - start
            del kept, data  # what the arm returned is freed after the clock, as its input is
            if round_no >= 0:
                samples[name].append(rows / elapsed)
    return [ArmResult(name, samples[name]) for name in names]


async def postgres() -> None:
    factory = DatabaseSessionFactory(db_config(PG_URL))
    engine = factory.engine
    repo = BulkRepo()
    n = PG_ROWS

    async def copy(records: list[tuple[Any, ...]]) -> None:
        async with engine.begin() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await conn.exec_driver_sql("SELECT 1")
            await raw.copy_records_to_table(TABLE, records=records, columns=COLUMNS)

    async def core(data: list[dict[str, Any]]) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(BulkRow.__table__), data)

    async def insert_all_driver_codecs(data: list[BulkRow]) -> None:
        """The public fallback of unverified asyncpg releases: every timestamp encoded by
        the driver's own codec, row by row."""
        verified = pg_copy_codecs.asyncpg_copy_codecs_verified
        pg_copy_codecs.asyncpg_copy_codecs_verified = lambda driver: False
        try:
            await repo.insert_all(data)
        finally:
            pg_copy_codecs.asyncpg_copy_codecs_verified = verified

    arms: dict[str, tuple[Prepare, Run]] = {
        "asyncpg COPY": (tuples, copy),
        "Core insert() dicts": (dict_rows_with_times, core),
        "insert_all dicts": (dict_rows, repo.insert_all),
        "insert_all entities": (entities, repo.insert_all),
        "insert_all, driver codecs only": (entities, insert_all_driver_codecs),
    }
    results = await run_arms(engine, n, arms)
    title = f"insert_all on PostgreSQL ({n:,} rows per insert, {ROUNDS} rounds)"
    print(format_table(title, results, "insert_all dicts", unit="rows/s"), flush=True)
    print_target(results, "asyncpg COPY", f"PostgreSQL insert_all of {n:,} dict rows vs COPY", 0.6)
    print_target(
        results, "Core insert() dicts", "PostgreSQL insert_all of dicts vs Core insert", 1.0
    )
    print_ratio(
        results,
        "insert_all entities",
        "asyncpg COPY",
        f"PostgreSQL insert_all of {n:,} pre-built entities vs COPY",
    )
    print_ratio(
        results,
        "insert_all, driver codecs only",
        "asyncpg COPY",
        "PostgreSQL insert_all on an unverified asyncpg vs COPY",
    )
    await DatabaseSessionFactory.close_all()


async def postgres_psycopg() -> None:
    """The same PostgreSQL arms on psycopg 3 (its COPY of ready tuples is the limit there)."""
    await DatabaseSessionFactory.close_all()
    url = PSYCOPG_URL
    factory = DatabaseSessionFactory(db_config(url))
    engine = factory.engine
    repo = BulkRepo()
    n = PG_ROWS
    copy_sql = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN"

    async def copy(records: list[tuple[Any, ...]]) -> None:
        async with engine.begin() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            async with raw.cursor() as cursor, cursor.copy(copy_sql) as stream:
                for record in records:
                    await stream.write_row(record)

    async def core(data: list[dict[str, Any]]) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(BulkRow.__table__), data)

    arms: dict[str, tuple[Prepare, Run]] = {
        "psycopg COPY": (tuples, copy),
        "Core insert() dicts": (dict_rows_with_times, core),
        "insert_all dicts": (dict_rows, repo.insert_all),
        "insert_all entities": (entities, repo.insert_all),
    }
    results = await run_arms(engine, n, arms)
    title = f"insert_all on PostgreSQL with psycopg 3 ({n:,} rows per insert, {ROUNDS} rounds)"
    print(format_table(title, results, "insert_all dicts", unit="rows/s"), flush=True)
    print_ratio(
        results, "insert_all dicts", "psycopg COPY", "psycopg insert_all of dicts vs its COPY"
    )
    print_ratio(results, "insert_all entities", "psycopg COPY", "psycopg insert_all vs its COPY")
    print_ratio(results, "insert_all entities", "Core insert() dicts", "psycopg insert_all vs Core")
    await DatabaseSessionFactory.close_all()


async def mariadb() -> None:
    factory = DatabaseSessionFactory(db_config(MARIADB_URL))
    engine = factory.engine
    repo = BulkRepo()
    n = MARIADB_ROWS
    sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES (%s, %s, %s, %s, %s)"

    async def executemany(records: list[tuple[Any, ...]]) -> None:
        async with engine.begin() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            async with raw.cursor() as cursor:
                await cursor.executemany(sql, records)

    async def core(data: list[dict[str, Any]]) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(BulkRow.__table__), data)

    arms: dict[str, tuple[Prepare, Run]] = {
        "aiomysql executemany": (naive_tuples, executemany),
        "Core insert() dicts": (dict_rows_with_times, core),
        "insert_all dicts": (dict_rows, repo.insert_all),
        "insert_all entities": (entities, repo.insert_all),
    }
    results = await run_arms(engine, n, arms)
    title = f"insert_all on MariaDB ({n:,} rows per insert, {ROUNDS} rounds)"
    print(format_table(title, results, "insert_all dicts", unit="rows/s"), flush=True)
    print_target(
        results, "aiomysql executemany", "MariaDB insert_all of dict rows vs executemany", 0.9
    )
    print_ratio(
        results,
        "insert_all entities",
        "aiomysql executemany",
        f"MariaDB insert_all of {n:,} pre-built entities vs executemany",
    )
    await DatabaseSessionFactory.close_all()


def print_ratio(results: list[ArmResult], arm: str, reference: str, name: str) -> None:
    """A ratio reported without a goal (the target table shows it with "—")."""
    by_name = {r.name: r.median for r in results}
    print(target_line(name, "reported", f"{by_name[arm] / by_name[reference]:.2f}x", None))


def print_target(results: list[ArmResult], reference: str, name: str, goal: float) -> None:
    """``insert_all`` of dicts against ``reference``, with its goal."""
    by_name = {r.name: r.median for r in results}
    ratio = by_name["insert_all dicts"] / by_name[reference]
    print(target_line(name, f">= {goal:g}x", f"{ratio:.2f}x", ratio >= goal), flush=True)


async def with_table(url: str, work: Callable[[], Awaitable[None]]) -> None:
    """Create ``bench_bulk`` fresh, run ``work``, drop the table again whatever happens."""
    admin = create_async_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.run_sync(lambda c: BulkRow.__table__.drop(c, checkfirst=True))
            await conn.run_sync(lambda c: BulkRow.__table__.create(c))
        await work()
    finally:
        async with admin.begin() as conn:
            await conn.run_sync(lambda c: BulkRow.__table__.drop(c, checkfirst=True))
        await admin.dispose()


async def main() -> None:
    wanted = os.environ.get("VIVEKA_BENCH_BACKENDS", "postgresql,psycopg,mariadb").split(",")
    if "postgresql" in wanted:
        if server_up(PG_URL):
            await with_table(PG_URL, postgres)
        else:
            print("PostgreSQL is not reachable: skipped\n")
    if "psycopg" in wanted:
        if server_up(PSYCOPG_URL):
            await with_table(PSYCOPG_URL, postgres_psycopg)
        else:
            print("PostgreSQL (psycopg) is not reachable: skipped\n")
    if "mariadb" in wanted:
        if server_up(MARIADB_URL):
            await with_table(MARIADB_URL, mariadb)
        else:
            print("MariaDB is not reachable: skipped\n")


if __name__ == "__main__":
    asyncio.run(main())
