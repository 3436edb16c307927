"""Watching what the database driver itself is asked to do, below SQLAlchemy's events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


def driver_in_transaction(driver: Any) -> bool:
    """Ask the driver connection (no I/O) whether a transaction is open on it."""
    if hasattr(driver, "is_in_transaction"):  # asyncpg
        return bool(driver.is_in_transaction())
    if hasattr(driver, "get_transaction_status"):  # aiomysql / asyncmy
        return bool(driver.get_transaction_status())
    if hasattr(driver, "info") and hasattr(driver.info, "transaction_status"):  # psycopg
        return int(driver.info.transaction_status) != 0  # 0: IDLE
    return bool(driver._conn.in_transaction)  # aiosqlite -> sqlite3


@contextmanager
def driver_calls(engine: AsyncEngine) -> Iterator[Counter[str]]:
    """Count ``commit()``/``rollback()`` calls on the driver connections ``engine`` checks out.

    aiosqlite and aiomysql expose both as coroutine methods that the SQLAlchemy adapter
    awaits; each connection checked out while the block runs gets counting wrappers.
    """
    counts: Counter[str] = Counter()
    wrapped: list[tuple[Any, str]] = []

    def wrap(driver: Any, name: str) -> None:
        original = getattr(driver, name)

        async def counting(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return await original(*args, **kwargs)

        setattr(driver, name, counting)
        wrapped.append((driver, name))

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if not hasattr(driver, "__dict__") or not hasattr(driver, "rollback"):
            return  # asyncpg: transactions are objects, the connection has no commit()
        if not getattr(driver, "_viveka_probe", False):
            driver._viveka_probe = True
            wrap(driver, "commit")
            wrap(driver, "rollback")

    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    try:
        yield counts
    finally:
        event.remove(pool, "checkout", on_checkout)
        for driver, name in wrapped:
            vars(driver).pop(name, None)
            vars(driver).pop("_viveka_probe", None)
