"""``viveka-db demo``: a short, self-checking tour on the embedded database and cache.

It needs no services: SQLite in a temporary directory (or ``./viveka_demo.db`` with
``--keep``) and the in-process cache. Each step prints what it did and what it observed.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from viveka_db.cli.output import escape, out

if TYPE_CHECKING:
    from viveka_db.cli.demo_model import CustomerRepo

__all__ = ["run_demo"]

KEPT_FILE = Path("viveka_demo.db")


class _StatementCounter:
    """Counts the SQL statements an engine sends (to show cache hits)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, *args: Any) -> None:
        self.count += 1


def _step(number: int, title: str, *lines: str) -> None:
    out.print(f"\n[bold]{number}. {escape(title)}[/bold]")
    for line in lines:
        out.print(f"   {escape(line)}")


@contextmanager
def _database_file(keep: bool) -> Generator[Path, None, None]:
    if keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{KEPT_FILE}{suffix}").unlink(missing_ok=True)
        yield KEPT_FILE.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="viveka_demo_") as tmp:
        yield Path(tmp) / "demo.db"


def run_demo(*, keep: bool = False) -> None:
    """Run the tour; with ``keep`` the database stays in ``./viveka_demo.db``."""
    with _database_file(keep) as path:
        asyncio.run(_tour(path))
        where = f"kept in {path}" if keep else "in a temporary directory, now removed"
        out.print(f"\ndone: the demo database was {escape(where)}.")


async def _tour(path: Path) -> None:
    from viveka_db import DatabaseSessionFactory
    from viveka_db.cache.setup import close_cache
    from viveka_db.cli import demo_model as m
    from viveka_db.config import CacheSettings, DatabaseSettings, VivekaSettings

    settings = VivekaSettings(  # explicit settings: the demo ignores config.ini and VIVEKA_*
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"),
        cache=CacheSettings(url="memory://"),
    )
    factory = DatabaseSessionFactory(settings)
    try:
        created = await factory.create_all([m.Customer, m.Order, m.AuditEntry])
        out.print(f"viveka-db demo: SQLite at {escape(str(path))}, in-process cache")
        _step(0, "schema", f"db init equivalent created: {', '.join(created)}")
        service = m.DemoService()

        ada = await service.register("Ada", "ada@example.com")
        linus = await service.register("Linus", "linus@example.com")
        _step(
            1,
            "inserts (@transactional service, DbRepo.insert_all)",
            f"registered {ada.name} (id={ada.id}) and {linus.name} (id={linus.id})",
        )

        found = await service.customers.find_by_field("email", "ada@example.com")
        await service.place_order(ada.id, "keyboard", 4_900)
        await service.place_order(ada.id, "mouse", 1_900)
        total = await service.orders.total_cents(ada.id)
        _step(
            2,
            "queries (each repository call runs in its own transaction)",
            f"customers.count() = {await service.customers.count()}",
            f"find_by_field('email', 'ada@example.com') -> {found.name if found else None}",
            f"2 orders placed; orders.total_cents(ada) = {total} (a read_only transaction)",
        )

        orders_before = await service.orders.count()
        try:
            await service.place_order(linus.id, "nothing", 0)
        except ValueError as exc:
            failure = str(exc)
        else:  # pragma: no cover - the service always raises here
            failure = "no error?"
        orders_after = await service.orders.count()
        _step(
            3,
            "rollback: an exception inside @transactional undoes its writes",
            f"place_order(..., cents=0) raised: {failure}",
            f"orders before: {orders_before}, after: {orders_after} "
            "(the inserted order was rolled back)",
        )

        audit = [entry.event for entry in await service.audit.get_all()]
        _step(
            4,
            "REQUIRES_NEW: the audit entry commits on its own",
            f"audit log has {len(audit)} entries; the last one survived the rollback above:",
            f"'{audit[-1]}'",
        )

        await _cache_step(factory.engine, service.customers)
    finally:
        await factory.dispose()
        await close_cache()


async def _cache_step(engine: AsyncEngine, customers: CustomerRepo) -> None:
    counter = _StatementCounter(engine)

    async def get_name(customer_id: int) -> tuple[str | None, int]:
        before = counter.count
        customer = await customers.get(customer_id)
        return (None if customer is None else customer.name), counter.count - before

    first, first_sql = await get_name(1)
    second, second_sql = await get_name(1)
    await customers.rename(1, "Ada Lovelace")
    third, third_sql = await get_name(1)
    _step(
        5,
        "@cacheable / @cache_evict (in-process cache)",
        f"get(1) -> {first!r}: {first_sql} SQL statement(s), a cache miss",
        f"get(1) -> {second!r}: {second_sql} SQL statement(s), "
        + ("a cache hit" if second_sql == 0 else "NOT a cache hit?"),
        "rename(1, 'Ada Lovelace') commits, then evicts the 'demo_customer' prefix",
        f"get(1) -> {third!r}: {third_sql} SQL statement(s), a miss again (fresh data)",
    )
