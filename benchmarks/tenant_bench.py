"""The cost of the tenant filter on a ``get_by_id`` and a page query (issue 21).

Two entities with the same columns and rows, one tenant-scoped (``TenantMixin``: every
statement gets ``AND tenant_id = :tenant`` from the session's row filter), one not; the
same ``@transactional(read_only=True)`` reads of each, interleaved in one run, on
PostgreSQL and SQLite (a file). The ratio is what the filter costs; reported, no target.
Measured in this process's CPU time (``time.process_time``): the filter's cost is client
work (building and binding the criteria), and CPU time is robust to other processes
competing for the cores; the database's share (an indexed ``tenant_id``) is not in it.
``VIVEKA_BENCH_BACKENDS=sqlite`` (or ``postgresql``) runs only that one.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backends import PG_URL, IdCycle, db_config, server_up, sqlite_url
from harness import ArmResult, format_table, run_interleaved, target_line
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    TenantMixin,
    VivekaDbBase,
    entity,
    table,
    tenant,
    transactional,
)

ROWS = 1000
OPS = 2000
ROUNDS = 9


async def bench(
    title: str,
    arms: Mapping[str, Callable[[], Awaitable[object]]],
    *,
    reference: str,
    ops: int,
    rounds: int,
) -> list[ArmResult]:
    results = await run_interleaved(arms, ops=ops, rounds=rounds, clock=time.process_time)
    print(format_table(f"{title} (1 task, CPU time)", results, reference), flush=True)
    return results


@entity
@table("bench_plain_items")
class PlainItem(VivekaDbBase):
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))


@entity
@table("bench_tenant_items")
class TenantItem(VivekaDbBase, TenantMixin):
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64))


class PlainRepo(DbRepo[PlainItem]):
    pass


class TenantRepo(DbRepo[TenantItem]):
    pass


plain, scoped = PlainRepo(), TenantRepo()


@transactional(read_only=True)
async def get_plain(item_id: int) -> object:
    return await plain.get_by_id(item_id)


@transactional(read_only=True)
async def get_scoped(item_id: int) -> object:
    return await scoped.get_by_id(item_id)


@transactional(read_only=True)
async def page_plain() -> object:
    return await plain.get_page(3, 20)


@transactional(read_only=True)
async def page_scoped() -> object:
    return await scoped.get_page(3, 20)


async def run(name: str, url: str) -> None:
    factory = DatabaseSessionFactory(db_config(url))
    tables = [PlainItem, TenantItem]
    await factory.drop_all(tables)
    await factory.create_all(tables)
    with tenant("t1"):
        await plain.insert_all([{"id": i, "tenant_id": "t1", "name": f"n{i}"} for i in range(ROWS)])
        await scoped.insert_all([{"id": i, "name": f"n{i}"} for i in range(ROWS)])
    with tenant("t2"):  # another tenant's rows, as many, in the scoped table only
        await scoped.insert_all([{"id": ROWS + i, "name": f"n{i}"} for i in range(ROWS)])
    plain_ids, scoped_ids = IdCycle(ROWS - 1), IdCycle(ROWS - 1)
    try:
        with tenant("t1"):
            got = await bench(
                f"get_by_id, {name}",
                {
                    "no tenant filter": lambda: get_plain(plain_ids()),
                    "tenant filter": lambda: get_scoped(scoped_ids()),
                },
                reference="no tenant filter",
                ops=OPS,
                rounds=ROUNDS,
            )
            paged = await bench(
                f"get_page(3, 20), {name}",
                {"no tenant filter": page_plain, "tenant filter": page_scoped},
                reference="no tenant filter",
                ops=OPS // 4,
                rounds=ROUNDS,
            )
        for what, results in (("get_by_id", got), ("page", paged)):
            ratio = results[1].median / results[0].median
            print(
                target_line(
                    f"tenant filter cost, {what}, {name}", "reported", f"{ratio:.2f}x", None
                ),
                flush=True,
            )
    finally:
        await factory.drop_all(tables)
        await DatabaseSessionFactory.close_all()


async def main() -> None:
    wanted = set(filter(None, os.environ.get("VIVEKA_BENCH_BACKENDS", "").split(",")))
    targets = [("postgresql", PG_URL), ("sqlite", sqlite_url())]
    for name, url in targets:
        if wanted and name not in wanted:
            continue
        if name != "sqlite" and not server_up(url):
            print(f"{name}: server not reachable, skipped", file=sys.stderr)
            continue
        await run(name, url)


if __name__ == "__main__":
    asyncio.run(main())
