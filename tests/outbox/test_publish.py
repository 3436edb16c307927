"""``publish``: the event commits or rolls back with the work; outside a transaction it is an
error; what is stored (type, key, JSON payload, trace headers); ``@on_event`` listeners."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.core.models import Item, ItemRepo
from tests.outbox.events import OrderPlaced, PriorityOrderPlaced, UserRenamed, outbox_rows
from viveka_db import (
    DatabaseSessionFactory,
    NoTransactionError,
    Propagation,
    ReadOnlyTransactionError,
    on_event,
    publish,
    transactional,
)
from viveka_db.outbox.listeners import remove_listener

repo = ItemRepo()


async def test_publish_in_a_committed_transaction_stores_one_row(
    db: DatabaseSessionFactory,
) -> None:
    placed_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    @transactional
    async def place() -> uuid.UUID:
        await repo.save(Item(tag="order"))
        return publish(OrderPlaced(7, Decimal("9.50"), placed_at), key=7).id

    event_id = await place()
    [row] = await outbox_rows(db)
    assert row.id == event_id
    assert (row.type, row.aggregatetype, row.aggregateid) == ("OrderPlaced", "OrderPlaced", "7")
    assert row.payload == {
        "order_id": 7,
        "total": "9.50",
        "placed_at": "2026-01-02T03:04:05+00:00",
        "colour": "red",
    }
    assert (row.status, row.attempts, row.published_at) == ("pending", 0, None)
    assert row.created_at.tzinfo is not None
    assert row.headers == {}  # nobody is tracing


async def test_publish_in_a_rolled_back_transaction_stores_nothing(
    db: DatabaseSessionFactory,
) -> None:
    @transactional
    async def place() -> None:
        await repo.save(Item(tag="order"))
        await publish(OrderPlaced(1, Decimal(1)), key=1)  # flushed, then rolled back
        raise RuntimeError("payment declined")

    with pytest.raises(RuntimeError):
        await place()
    assert await outbox_rows(db) == []
    assert await repo.count() == 0


async def test_publish_in_a_rolled_back_savepoint_is_discarded(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.NESTED)
    async def inner() -> None:
        publish(OrderPlaced(2, Decimal(2)), key=2)
        raise ValueError("inner fails")

    @transactional
    async def outer() -> None:
        publish(OrderPlaced(1, Decimal(1)), key=1)
        with pytest.raises(ValueError):
            await inner()

    await outer()
    assert [row.aggregateid for row in await outbox_rows(db)] == ["1"]


async def test_publish_outside_a_transaction_raises(db: DatabaseSessionFactory) -> None:
    with pytest.raises(NoTransactionError, match="@transactional"):
        publish(OrderPlaced(1, Decimal(1)))
    assert await outbox_rows(db) == []


async def test_publish_in_read_only_work_raises(db: DatabaseSessionFactory) -> None:
    @transactional(read_only=True)
    async def look() -> None:
        publish(OrderPlaced(1, Decimal(1)))

    with pytest.raises(ReadOnlyTransactionError):
        await look()


async def test_types_keys_and_models(db: DatabaseSessionFactory) -> None:
    key = uuid.uuid4()

    @transactional
    async def work() -> uuid.UUID:
        publish(PriorityOrderPlaced(1, Decimal(1)), key=key)
        publish(UserRenamed(user_id=3, name="Ada"), key="user-3")
        publish({"sku": "x"}, event_type="StockLow", aggregate_type="stock", key=5)
        return publish(OrderPlaced(2, Decimal(2))).id

    unkeyed = await work()
    rows = await outbox_rows(db)
    assert [(r.type, r.aggregatetype, r.aggregateid) for r in rows] == [
        ("order.priority", "order", str(key)),
        ("UserRenamed", "UserRenamed", "user-3"),
        ("StockLow", "stock", "5"),
        ("OrderPlaced", "OrderPlaced", str(unkeyed)),  # no key: ordered with no other event
    ]
    assert rows[1].payload == {"user_id": 3, "name": "Ada"}
    assert rows[2].payload == {"sku": "x"}


@pytest.mark.parametrize(
    ("event", "kwargs", "error", "message"),
    [
        ({"sku": "x"}, {}, TypeError, "event_type="),
        (object(), {}, TypeError, "dataclass, a Pydantic model"),
        (OrderPlaced(1, Decimal(1)), {"key": 1.5}, TypeError, "str, int or UUID"),
        (OrderPlaced(1, Decimal(1)), {"key": ""}, ValueError, "1 to 255"),
        (OrderPlaced(1, Decimal(1)), {"event_type": "x" * 256}, ValueError, "at most 255"),
        ({"when": object()}, {"event_type": "T"}, TypeError, "JSON"),
    ],
)
async def test_bad_events_are_refused_with_a_reason(
    db: DatabaseSessionFactory, event: object, kwargs: dict[str, Any], error: type, message: str
) -> None:
    @transactional
    async def work() -> None:
        publish(event, **kwargs)

    with pytest.raises(error, match=message):
        await work()
    assert await outbox_rows(db) == []


async def test_an_entity_is_refused(db: DatabaseSessionFactory) -> None:
    @transactional
    async def work() -> None:
        publish(await repo.save(Item(tag="x")))

    with pytest.raises(TypeError, match="cannot publish the entity Item"):
        await work()


# -- @on_event --------------------------------------------------------------------------


async def test_listeners_run_after_commit_never_after_rollback(
    db: DatabaseSessionFactory,
) -> None:
    seen: list[tuple[str, object]] = []
    committed_rows: list[int] = []

    @on_event(OrderPlaced)
    async def on_order(event: OrderPlaced) -> None:
        seen.append(("async", event))
        committed_rows.append(len(await outbox_rows(db)))  # runs after COMMIT

    @on_event(OrderPlaced)
    def failing(event: OrderPlaced) -> None:
        raise RuntimeError("listener bug")

    @on_event(OrderPlaced)
    def sync_listener(event: OrderPlaced) -> None:
        seen.append(("sync", event))

    try:
        ok, bad = OrderPlaced(1, Decimal(1)), OrderPlaced(2, Decimal(2))

        @transactional
        async def work(event: OrderPlaced, fail: bool) -> None:
            before = len(seen)
            publish(event, key=event.order_id)
            await repo.save(Item(tag="x"))
            assert len(seen) == before  # not before the commit
            if fail:
                raise ValueError("rolled back")

        await work(ok, False)
        with pytest.raises(ValueError):
            await work(bad, True)
        assert seen == [("async", ok), ("sync", ok)]  # the failing listener did not stop sync
        assert committed_rows == [1]
        # a subclass's event reaches the listeners of its base class
        await work(PriorityOrderPlaced(3, Decimal(3)), False)
        assert len(seen) == 4
    finally:
        for listener in (on_order, failing, sync_listener):
            remove_listener(OrderPlaced, listener)


async def test_a_listener_that_raises_is_logged(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    @on_event(UserRenamed)
    def broken(event: UserRenamed) -> None:
        raise RuntimeError("boom")

    try:

        @transactional
        async def work() -> None:
            publish(UserRenamed(user_id=1, name="a"))

        await work()  # the commit stands
        assert len(await outbox_rows(db)) == 1
        assert "listener" in caplog.text and "broken" in caplog.text
    finally:
        remove_listener(UserRenamed, broken)


def test_on_event_takes_a_class() -> None:
    with pytest.raises(TypeError, match="event class"):
        on_event("OrderPlaced")  # type: ignore[arg-type]
