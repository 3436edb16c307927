"""Metrics: statement durations, pool connections, transaction outcomes, retries."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.telemetry.conftest import Telemetry
from tests.telemetry.models import Gadget, GadgetRepo
from viveka_db import DatabaseSessionFactory, current_session, transactional
from viveka_db.telemetry.transaction import transaction_span

SYSTEM = {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mariadb"}
repo = GadgetRepo()


@transactional
async def stock(count: int) -> None:
    await repo.insert_all([Gadget(name=f"g{i}", qty=i) for i in range(count)])
    for _ in range(3):
        await current_session().execute(text("SELECT count(*) FROM tel_gadgets"))


@transactional
async def broken() -> None:
    await current_session().execute(text("SELECT 1 FROM no_such_table"))


async def test_operation_duration_histogram(
    db: DatabaseSessionFactory, backend: str, telemetry: Telemetry
) -> None:
    await stock(1)
    with pytest.raises(Exception, match="no_such_table"):
        await broken()

    points = telemetry.points("db.client.operation.duration")
    selects = [
        p
        for p in points
        if p.attributes.get("db.operation.name") == "SELECT"
        and p.attributes.get("db.collection.name") == "tel_gadgets"
    ]
    assert len(selects) == 1
    (point,) = selects
    assert point.count == 3
    assert 0 < point.sum < 10  # seconds, not milliseconds
    assert point.attributes["db.system.name"] == SYSTEM[backend]
    assert "db.query.text" not in point.attributes  # unbounded cardinality stays on spans
    assert list(point.explicit_bounds) == [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]
    inserts = [p for p in points if p.attributes.get("db.operation.name") == "INSERT"]
    assert sum(p.count for p in inserts) == 1
    failed = [p for p in points if "error.type" in p.attributes]
    assert len(failed) == 1 and failed[0].attributes.get("db.collection.name") == "no_such_table"


async def test_connection_count_by_state(
    db: DatabaseSessionFactory, backend: str, telemetry: Telemetry
) -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    @transactional
    async def hold() -> None:
        await current_session().execute(text("SELECT 1"))
        held.set()
        await release.wait()

    task = asyncio.create_task(hold())
    await held.wait()
    try:
        during = {
            p.attributes["db.client.connection.state"]: p.value
            for p in telemetry.points("db.client.connection.count")
            if p.attributes["db.client.connection.pool.name"] == "default"
        }
    finally:
        release.set()
        await task
    after = {
        p.attributes["db.client.connection.state"]: p.value
        for p in telemetry.points("db.client.connection.count")
        if p.attributes["db.client.connection.pool.name"] == "default"
    }
    assert during["used"] == 1
    assert after["used"] == 0
    assert after["idle"] >= 1


async def test_transaction_outcomes_and_retries_are_counted(telemetry: Telemetry) -> None:
    with transaction_span("job", propagation="REQUIRED", read_only=False, data_source="x") as span:
        span.set_retries(1)
        span.set_retries(2)
    with pytest.raises(ValueError, match="outcome"):
        span.set_outcome("maybe")  # type: ignore[arg-type]
    (retries,) = telemetry.points("viveka_db.transaction.retries")
    assert retries.value == 2
    assert retries.attributes == {"viveka_db.data_source": "x"}
    (done,) = telemetry.points("viveka_db.transactions")
    assert done.attributes["viveka_db.transaction.outcome"] == "committed"
    job = telemetry.named("job")
    assert job.attributes is not None and job.attributes["viveka_db.transaction.retries"] == 2
