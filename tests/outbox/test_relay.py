"""``OutboxRelay``: at least once, in order per key, several relays at once, retries with
backoff then the dead state, cleanup of delivered rows, and a graceful stop."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from tests.outbox.events import Numbered, outbox_rows
from viveka_db import DatabaseSessionFactory, OutboxEvent, OutboxRelay, publish, transactional

FAST = {"poll_interval": 0.05, "retry_backoff": 0.01, "max_backoff": 0.02}


async def publish_numbered(
    keys: int, per_key: int, per_transaction: int = 25, *, in_runs: bool = False
) -> list[uuid.UUID]:
    """``keys * per_key`` events, ``n`` counting up within each key: keys interleaved, or
    (``in_runs``) each key's events one after another."""
    if in_runs:
        events = [Numbered(f"k{k}", n) for k in range(keys) for n in range(per_key)]
    else:
        events = [Numbered(f"k{k}", n) for n in range(per_key) for k in range(keys)]

    @transactional
    async def chunk(part: list[Numbered]) -> list[uuid.UUID]:
        return [publish(event, key=event.key).id for event in part]

    ids: list[uuid.UUID] = []
    for start in range(0, len(events), per_transaction):
        ids += await chunk(events[start : start + per_transaction])
    return ids


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def first_deliveries_in_order(deliveries: list[tuple[str, int]]) -> None:
    """The first delivery of each event comes in ``n`` order within its key."""
    firsts: dict[str, list[int]] = defaultdict(list)
    done: set[tuple[str, int]] = set()
    for key, n in deliveries:
        if (key, n) not in done:
            done.add((key, n))
            firsts[key].append(n)
    for key, ns in firsts.items():
        assert ns == sorted(ns), (key, ns)


async def test_two_relays_deliver_1000_events_once_each_in_key_order(
    db: DatabaseSessionFactory, backend: str
) -> None:
    # Keys in runs and batches of 30, so a key spans two batches and the relays really share:
    # while one delivers k0's first 30, the other claims k0's rest (held back: k0 is taken)
    # with k1's first 10 (delivered). Interleaved keys would put every key in every batch,
    # and which relay got the work would be luck (see docs/how-to/outbox.md).
    ids = await publish_numbered(keys=20, per_key=50, in_runs=True)
    delivered: list[tuple[str, uuid.UUID, str, int]] = []

    def deliver_as(name: str) -> Callable[[OutboxEvent], Awaitable[None]]:
        async def deliver(event: OutboxEvent) -> None:
            await asyncio.sleep(0.001)  # a broker round trip: both relays get work
            delivered.append((name, event.id, event.aggregateid, event.payload["n"]))

        return deliver

    async with (
        OutboxRelay(deliver_as("a"), batch_size=30, concurrency=2, **FAST),
        OutboxRelay(deliver_as("b"), batch_size=30, concurrency=2, **FAST),
    ):

        async def all_delivered() -> bool:
            return len({d[1] for d in delivered}) == len(ids)

        await eventually(all_delivered)
    assert sorted(d[1] for d in delivered) == sorted(ids)  # none lost, none twice
    per_key: dict[str, list[int]] = defaultdict(list)
    for _, _, key, n in delivered:
        per_key[key].append(n)
    assert all(ns == list(range(50)) for ns in per_key.values()), per_key
    if backend != "sqlite":  # SQLite's relays take turns; the servers' share batches
        assert {d[0] for d in delivered} == {"a", "b"}
    rows = await outbox_rows(db)
    assert {row.status for row in rows} == {"delivered"}
    assert all(row.published_at is not None and row.attempts == 1 for row in rows)


async def test_a_failing_delivery_is_retried_then_dead(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    @transactional
    async def work() -> None:
        publish(Numbered("poison", 0), key="poison")
        publish(Numbered("flaky", 0), key="flaky")
        publish(Numbered("flaky", 1), key="flaky")

    await work()
    calls: list[tuple[str, int, int]] = []

    async def deliver(event: OutboxEvent) -> None:
        calls.append((event.aggregateid, event.payload["n"], event.attempt))
        if event.aggregateid == "poison":
            raise ConnectionError("broker at kafka://svc:hunter2@broker:9092 refused")
        if event.aggregateid == "flaky" and event.payload["n"] == 0 and event.attempt == 1:
            raise TimeoutError("slow broker")

    relay = OutboxRelay(deliver, max_attempts=3, **FAST)

    async def settled() -> bool:
        await relay.run_once()
        rows = await outbox_rows(db)
        return all(row.status != "pending" for row in rows)

    await eventually(settled, within=30)
    rows = {(r.aggregateid, r.payload["n"]): r for r in await outbox_rows(db)}
    poison = rows[("poison", 0)]
    assert (poison.status, poison.attempts) == ("dead", 3)
    assert poison.last_error.startswith("ConnectionError: broker at kafka://svc:***@")
    assert "hunter2" not in poison.last_error and "hunter2" not in caplog.text
    assert [c for c in calls if c[0] == "poison"] == [
        ("poison", 0, 1),
        ("poison", 0, 2),
        ("poison", 0, 3),
    ]
    # flaky#0 failed once; flaky#1 waited for it (per-key order), then both went through
    flaky = [c for c in calls if c[0] == "flaky"]
    assert flaky == [("flaky", 0, 1), ("flaky", 0, 2), ("flaky", 1, 1)]
    assert (rows[("flaky", 0)].status, rows[("flaky", 0)].attempts) == ("delivered", 2)
    assert rows[("flaky", 0)].last_error is None
    assert "is dead after 3 attempts" in caplog.text


async def test_a_retry_waits_for_its_backoff_and_holds_back_its_key(
    db: DatabaseSessionFactory,
) -> None:
    @transactional
    async def work() -> None:
        publish(Numbered("k", 0), key="k")
        publish(Numbered("k", 1), key="k")
        publish(Numbered("other", 0), key="other")

    await work()
    attempts: list[tuple[str, int, int]] = []

    async def deliver(event: OutboxEvent) -> None:
        attempts.append((event.aggregateid, event.payload["n"], event.attempt))
        if event.aggregateid == "k":
            raise RuntimeError("down")

    relay = OutboxRelay(deliver, retry_backoff=30, max_backoff=60)
    assert await relay.run_once() == 2  # k#0 failed, k#1 held back, other#0 delivered
    assert await relay.run_once() == 0  # k#0 not due for 15 to 30 s; k#1 waits for it
    assert attempts == [("k", 0, 1), ("other", 0, 1)]
    first, second, _ = await outbox_rows(db)
    assert (first.status, first.attempts, second.status, second.attempts) == (
        "pending", 1, "pending", 0,
    )  # fmt: skip
    delay = first.next_attempt_at - first.created_at
    assert timedelta(seconds=14) < delay < timedelta(seconds=31)


async def test_delivered_rows_are_deleted_by_the_cleanup_policy(
    db: DatabaseSessionFactory,
) -> None:
    await publish_numbered(keys=2, per_key=3)

    async def deliver(event: OutboxEvent) -> None:
        return None

    keep = OutboxRelay(deliver, delete_delivered_after=None)
    assert await keep.run_once() == 6
    assert await keep.cleanup() == 0
    assert len(await outbox_rows(db)) == 6
    assert await OutboxRelay(deliver, delete_delivered_after=3600).cleanup() == 0
    assert (
        await OutboxRelay(deliver, delete_delivered_after=timedelta(microseconds=1)).cleanup() == 6
    )
    assert await outbox_rows(db) == []

    await publish_numbered(keys=1, per_key=2)
    assert await OutboxRelay(deliver, delete_delivered_after=0).run_once() == 2
    assert await outbox_rows(db) == []  # deleted as they were delivered


async def test_stop_finishes_and_records_the_batch_in_hand(db: DatabaseSessionFactory) -> None:
    await publish_numbered(keys=1, per_key=10)
    seen: list[int] = []

    async def deliver(event: OutboxEvent) -> None:
        seen.append(event.payload["n"])
        relay.stop()  # asked to stop during the first delivery

    relay = OutboxRelay(deliver, batch_size=4)
    await asyncio.wait_for(relay.run(), 10)
    assert seen == [0, 1, 2, 3]
    statuses = [row.status for row in await outbox_rows(db)]
    assert statuses == ["delivered"] * 4 + ["pending"] * 6


async def test_postgresql_notify_wakes_an_idle_relay(
    db: DatabaseSessionFactory, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; the others poll")
    got = asyncio.Event()

    async def deliver(event: OutboxEvent) -> None:
        got.set()

    async with OutboxRelay(deliver, poll_interval=60):
        await asyncio.sleep(0.3)  # the relay polled once, found nothing, and waits
        await publish_numbered(keys=1, per_key=1)
        await asyncio.wait_for(got.wait(), 5)  # far sooner than the 60 s poll


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer from 1"),
        ({"max_attempts": "3"}, "max_attempts must be an integer"),
        ({"poll_interval": -1}, "poll_interval must be a number of seconds > 0"),
        ({"retry_backoff": 10, "max_backoff": 1}, "max_backoff must be at least retry_backoff"),
        ({"delete_delivered_after": -5}, "delete_delivered_after must be"),
        ({"batchsize": 5}, "unknown relay option batchsize; valid: batch_size"),
    ],
)
def test_bad_options_are_refused_with_a_reason(options: dict[str, object], message: str) -> None:
    async def deliver(event: OutboxEvent) -> None:
        return None

    with pytest.raises((TypeError, ValueError), match=message):
        OutboxRelay(deliver, **options)  # type: ignore[arg-type]


async def test_start_and_await_stop(db: DatabaseSessionFactory) -> None:
    await publish_numbered(keys=2, per_key=2)
    seen: list[int] = []

    async def deliver(event: OutboxEvent) -> None:
        seen.append(event.payload["n"])

    relay = OutboxRelay(deliver, poll_interval=0.05)
    task = relay.start()
    with pytest.raises(RuntimeError, match="already running"):
        relay.start()

    async def drained() -> bool:
        return len(seen) == 4

    await eventually(drained)
    await relay.stop()
    assert task.done() and task.exception() is None
    await relay.stop()  # stopping a stopped relay is a no-op


async def test_a_delivery_slower_than_its_timeout_fails(db: DatabaseSessionFactory) -> None:
    await publish_numbered(keys=1, per_key=1)

    async def deliver(event: OutboxEvent) -> None:
        await asyncio.sleep(10)

    assert await OutboxRelay(deliver, delivery_timeout=0.05, retry_backoff=60).run_once() == 1
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("TimeoutError")
