"""Issue 6, target 1: a ``@transactional`` read by primary key on the background path.

No request is in context, so every call opens its own session and transaction, exactly like
a worker or a scheduled job. Arms, on PostgreSQL, MariaDB and SQLite (a file), 1 and 32 tasks:

* ``raw driver``      asyncpg pool ``fetchrow`` / aiomysql pool / aiosqlite (a pool of connections);
* ``ORM session``     ``async with Session() as s, s.begin(): await s.get(...)`` (the reference);
* ``repo.get_by_id``  a repository method called directly (it runs in its own transaction);
* ``@transactional``  a service method that calls the repository (which joins);
* ``@tx(read_only)``  the same with ``@transactional(read_only=True)``.

Targets: ``@transactional`` >= 1.2x the ORM session; ``read_only=True`` >= 0.6x the raw
driver on PostgreSQL, 0.5x on MariaDB, 0.3x on SQLite.
Every arm has the same pool size (``POOL_SIZE``, no overflow). ``VIVEKA_BENCH_BACKENDS=sqlite``
(or ``postgresql``, ``mariadb``, comma separated) runs only those.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from backends import (
    MARIADB_URL,
    PG_URL,
    POOL_SIZE,
    BenchUser,
    BenchUserRepo,
    IdCycle,
    db_config,
    engine_options,
    raw_asyncpg_pool,
    seed_rows,
    server_up,
    sqlite_url,
)
from harness import bench, profile_lines, profile_summary, target_line
from viveka_db import DatabaseSessionFactory, transactional

Op = Callable[[], Awaitable[object]]
SECONDS_PER_RUN = 0.1  # short runs, many rounds: robust to other load on the machine
ROUNDS = 15
SELECT_SQL = "SELECT id, name, email FROM bench_users WHERE id = {}"


class UserService:
    """A service on top of the repository, as users write them."""

    def __init__(self, repo: BenchUserRepo) -> None:
        self.repo = repo

    @transactional
    async def get(self, user_id: int) -> BenchUser | None:
        return await self.repo.get_by_id(user_id)

    @transactional(read_only=True)
    async def get_read_only(self, user_id: int) -> BenchUser | None:
        return await self.repo.get_by_id(user_id)


async def raw_arm(url: str, next_id: IdCycle) -> tuple[Op, Callable[[], Awaitable[None]]]:
    """The driver alone: a pool of ``POOL_SIZE`` connections and one SELECT per call."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        pool = await raw_asyncpg_pool(parsed, POOL_SIZE)
        sql = SELECT_SQL.format("$1")

        async def pg_op() -> object:
            return await pool.fetchrow(sql, next_id())

        return pg_op, pool.close
    if backend in ("mysql", "mariadb"):
        import aiomysql

        mpool = await aiomysql.create_pool(
            host=parsed.host,
            port=parsed.port or 3306,
            user=parsed.username,
            password=parsed.password or "",
            db=parsed.database,
            minsize=POOL_SIZE,
            maxsize=POOL_SIZE,
            autocommit=True,
        )
        sql = SELECT_SQL.format("%s")

        async def mysql_op() -> object:
            async with mpool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(sql, (next_id(),))
                return await cur.fetchone()

        async def mysql_close() -> None:
            mpool.close()
            await mpool.wait_closed()

        return mysql_op, mysql_close
    import aiosqlite

    idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
    for _ in range(POOL_SIZE):
        idle.put_nowait(await aiosqlite.connect(parsed.database))
    sql = SELECT_SQL.format("?")

    async def sqlite_op() -> object:
        conn = await idle.get()
        try:
            async with conn.execute(sql, (next_id(),)) as cur:
                return await cur.fetchone()
        finally:
            idle.put_nowait(conn)

    async def sqlite_close() -> None:
        while not idle.empty():
            await idle.get_nowait().close()

    return sqlite_op, sqlite_close


async def ops_per_run(op: Op, concurrency: int) -> int:
    """How many calls take about ``SECONDS_PER_RUN`` at this concurrency."""
    probe = max(concurrency * 4, 100)
    start = time.perf_counter()
    await asyncio.gather(*(op() for _ in range(probe)))
    rate = probe / (time.perf_counter() - start)
    return max(int(rate * SECONDS_PER_RUN), concurrency * 2)


RAW_TARGETS = {"PostgreSQL": 0.6, "MariaDB": 0.5, "SQLite file": 0.3}
"""``@tx(read_only)`` against the raw driver, per database."""


def verdicts(
    medians: dict[str, float], label: str, where: str = ""
) -> tuple[str, list[tuple[str, str]]]:
    """The targets' lines, and (target, arm) of each one missed."""
    parts = []
    lines = []
    missed = []
    for arm, reference, target in (
        ("@transactional", "ORM session", 1.2),
        ("@tx(read_only)", "raw driver", RAW_TARGETS[label]),
    ):
        ratio = medians[arm] / medians[reference]
        met = ratio >= target
        parts.append(f"{arm} {ratio:.2f}x {reference} (>= {target}x: {'met' if met else 'MISSED'})")
        name = f"{where}{arm} vs {reference}"
        lines.append(target_line(name, f">= {target:g}x", f"{ratio:.2f}x", met))
        if not met:
            missed.append((name, arm))
    return "Targets: " + "; ".join(parts) + "\n" + "\n".join(lines), missed


async def run_backend(label: str, url: str) -> None:
    factory = DatabaseSessionFactory(db_config(url))
    await factory.drop_all([BenchUser])
    await factory.create_all([BenchUser])
    repo = BenchUserRepo()
    await repo.insert_all(seed_rows())
    engine = create_async_engine(url, **engine_options())
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    service = UserService(repo)
    next_id = IdCycle()

    async def orm_session() -> Any:
        async with session_maker() as session, session.begin():
            return await session.get(BenchUser, next_id())

    raw, close_raw = await raw_arm(url, next_id)
    arms: dict[str, Op] = {
        "raw driver": raw,
        "ORM session": orm_session,
        "repo.get_by_id": lambda: repo.get_by_id(next_id()),
        "@transactional": lambda: service.get(next_id()),
        "@tx(read_only)": lambda: service.get_read_only(next_id()),
    }
    try:
        for concurrency in (1, 32):
            ops = await ops_per_run(orm_session, concurrency)
            results = await bench(
                f"{label}: get by primary key, background path",
                arms,
                reference="ORM session",
                ops=ops,
                rounds=ROUNDS,
                concurrency=concurrency,
            )
            where = f"{label}, {concurrency} task{'s' if concurrency > 1 else ''}: "
            text, missed = verdicts({r.name: r.median for r in results}, label, where)
            print(text + "\n", flush=True)
            for name, arm in missed:  # where a missed target's time goes
                lines = await profile_summary(arms[arm], calls=500, concurrency=concurrency)
                print(profile_lines(name, lines), flush=True)
    finally:
        await close_raw()
        await engine.dispose()
        await factory.drop_all([BenchUser])
        await DatabaseSessionFactory.close_all()


async def main() -> None:
    print("## Target 1: @transactional read by primary key (background path)\n")
    print(f"Pool: {POOL_SIZE} connections per arm, no overflow. Reference: ORM session.\n")
    backends = [("PostgreSQL", PG_URL), ("MariaDB", MARIADB_URL), ("SQLite file", sqlite_url())]
    only = os.environ.get("VIVEKA_BENCH_BACKENDS", "").lower()  # e.g. "sqlite,postgresql"
    for label, url in backends:
        if only and not any(name.strip() in label.lower() for name in only.split(",")):
            continue
        if not url.startswith("sqlite") and not server_up(url):
            print(f"_{label} skipped: no server at {make_url(url).host}:{make_url(url).port}_\n")
            continue
        await run_backend(label, url)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
