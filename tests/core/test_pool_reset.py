"""The write engine's pool rolls back a returning connection only if it is in a transaction.

``create_write_engine`` replaces the pool's unconditional reset-on-return ROLLBACK with
``_reset_if_in_transaction``: after a COMMIT the connection goes back as it is (no round
trip on MariaDB, no thread hop on SQLite); a connection that comes back mid-transaction is
still rolled back, so nothing leaks into the next checkout.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.util import greenlet_spawn

from tests.core.driver_probe import driver_calls, driver_in_transaction
from tests.core.helpers import checked_out, committed_tags
from tests.core.models import Item, ItemRepo
from viveka_db import DatabaseSessionFactory, current_session, transactional

repo = ItemRepo()


async def test_a_committed_connection_returns_without_a_rollback(
    db: DatabaseSessionFactory, backend: str
) -> None:
    if backend == "postgresql":
        pytest.skip("asyncpg has no connection-level commit()/rollback() to count")
    drivers: list[Any] = []

    @transactional
    async def write() -> None:
        current_session().add(Item(tag="kept"))
        await current_session().flush()
        raw = await (await current_session().connection()).get_raw_connection()
        drivers.append(raw.driver_connection)

    @transactional
    async def read() -> int:
        return await repo.count()

    with driver_calls(db.engine) as calls:
        await write()
        assert await read() == 1
        await repo.insert_all([Item(tag="more")])  # a repository call's own transaction
    assert calls["commit"] >= 2, calls
    assert calls["rollback"] == 0, calls  # no ROLLBACK at check-in after a COMMIT
    assert checked_out(db.engine) == 0
    assert not driver_in_transaction(drivers[0])
    assert await committed_tags(db.engine) == ["kept", "more"]


async def test_an_exception_rolls_back_and_the_connection_comes_back_clean(
    db: DatabaseSessionFactory, backend: str
) -> None:
    drivers: list[Any] = []

    @transactional
    async def write_then_fail() -> None:
        current_session().add(Item(tag="lost"))
        await current_session().flush()
        raw = await (await current_session().connection()).get_raw_connection()
        drivers.append(raw.driver_connection)
        assert driver_in_transaction(raw.driver_connection)
        raise ValueError("boom")

    with driver_calls(db.engine) as calls, pytest.raises(ValueError, match="boom"):
        await write_then_fail()
    if backend != "postgresql":
        assert calls["rollback"] == 1, calls  # rolled back once, not again at check-in
    assert checked_out(db.engine) == 0
    assert not driver_in_transaction(drivers[0])
    assert await committed_tags(db.engine) == []
    await repo.insert_all([Item(tag="next")])  # the next checkout works normally
    assert await committed_tags(db.engine) == ["next"]


def _return_mid_transaction(db: DatabaseSessionFactory, backend: str) -> Any:
    """Check a connection out of the pool, write without committing, and hand it back."""
    fairy: Any = db.engine.sync_engine.pool.connect()
    cursor = fairy.cursor()
    if backend == "sqlite":  # the engine drives SQLite's transactions itself
        cursor.execute("BEGIN IMMEDIATE")
    cursor.execute("INSERT INTO core_items (tag, n) VALUES ('dirty', 0)")
    cursor.close()
    driver = fairy.driver_connection
    assert driver_in_transaction(driver)
    fairy.close()  # back to the pool with the transaction still open
    return driver


async def test_a_connection_returned_mid_transaction_is_rolled_back(
    db: DatabaseSessionFactory, backend: str
) -> None:
    with driver_calls(db.engine) as calls:
        driver = await greenlet_spawn(_return_mid_transaction, db, backend)
    if backend != "postgresql":
        assert calls["rollback"] == 1, calls  # the pool's reset rolled it back
    assert not driver_in_transaction(driver)
    assert checked_out(db.engine) == 0
    assert await committed_tags(db.engine) == []  # the row was never committed
    await repo.insert_all([Item(tag="clean")])  # no leftover lock or transaction
    assert await committed_tags(db.engine) == ["clean"]
