"""``viveka-db outbox ...`` and the outbox table in ``db init`` and Alembic autogenerate."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from tests.outbox.events import Numbered, outbox_rows
from tests.tooling.cli import cli_env, run_cli
from viveka_db import DatabaseSessionFactory, OutboxEvent, OutboxRelay, publish, transactional

MODEL = """
from sqlalchemy.orm import Mapped, mapped_column
from viveka_db import VivekaDbBase, entity, table


@entity
@table("tool_obx_orders")
class Order(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
"""


async def _columns(url: str, table: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: inspect(c).get_columns(table))
            return {column["name"] for column in columns}
    finally:
        await engine.dispose()


def test_outbox_init_creates_the_table_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'obx.db'}"
    first = run_cli("outbox", "init", cwd=tmp_path, env=cli_env(url))
    assert first.stdout.strip() == "created: viveka_outbox"
    again = run_cli("outbox", "init", cwd=tmp_path, env=cli_env(url))
    assert again.stdout.strip() == "already existed: viveka_outbox"
    columns = asyncio.run(_columns(url, "viveka_outbox"))
    debezium = {"id", "aggregatetype", "aggregateid", "type", "payload"}
    assert debezium | {"headers", "created_at", "published_at", "attempts"} <= columns


def test_db_init_also_creates_the_outbox_table(tmp_path: Path) -> None:
    (tmp_path / "obx_models.py").write_text(MODEL)
    url = f"sqlite+aiosqlite:///{tmp_path / 'init.db'}"
    result = run_cli("db", "init", "--models", "obx_models", cwd=tmp_path, env=cli_env(url))
    assert "created: tool_obx_orders" in result.stdout
    assert "outbox table: viveka_outbox (created)" in result.stdout


def test_autogenerate_includes_the_outbox_table(tmp_path: Path) -> None:
    (tmp_path / "obx_models.py").write_text(MODEL)
    url = f"sqlite+aiosqlite:///{tmp_path / 'mig.db'}"
    env = cli_env(url, VIVEKA_DATABASE__MODELS="obx_models")
    run_cli("db", "migrations", "init", cwd=tmp_path, env=env)
    run_cli("db", "revision", "-m", "first", "--autogenerate", cwd=tmp_path, env=env)
    [script] = (tmp_path / "migrations" / "versions").glob("*first.py")
    assert "'viveka_outbox'" in script.read_text()
    run_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert "aggregateid" in asyncio.run(_columns(url, "viveka_outbox"))
    again = run_cli("db", "revision", "-m", "nothing", "--autogenerate", cwd=tmp_path, env=env)
    [empty] = (tmp_path / "migrations" / "versions").glob("*nothing.py")
    assert "create_table" not in empty.read_text() and "Traceback" not in again.stderr


async def test_status_and_requeue(
    db: DatabaseSessionFactory, backend_url: str, tmp_path: Path
) -> None:
    @transactional
    async def work() -> None:
        publish(Numbered("a", 0), key="a")
        publish(Numbered("b", 0), key="b")

    await work()

    async def deliver(event: OutboxEvent) -> None:
        if event.aggregateid == "a":
            raise RuntimeError("refused")

    assert await OutboxRelay(deliver, max_attempts=1, delete_delivered_after=None).run_once() == 2

    def cli(*args: str) -> str:
        return run_cli(*args, cwd=tmp_path, env=cli_env(backend_url)).stdout

    status = await asyncio.to_thread(cli, "outbox", "status")
    assert "pending: 0" in status and "delivered: 1" in status and "dead: 1" in status
    assert "requeued: 1" in await asyncio.to_thread(cli, "outbox", "requeue")
    [a] = [row for row in await outbox_rows(db) if row.aggregateid == "a"]
    assert (a.status, a.attempts, a.last_error) == ("pending", 0, None)
    assert "oldest pending:" in await asyncio.to_thread(cli, "outbox", "status")


def test_relay_with_a_bad_deliver_explains(tmp_path: Path) -> None:
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    for spec, message in [
        ("nocolon", "--deliver takes module:function"),
        ("json:no_such_function", "json has no attribute 'no_such_function'"),
        ("no_such_module_x:f", "no module named 'no_such_module_x'"),
    ]:
        result = run_cli("outbox", "relay", "--deliver", spec, cwd=tmp_path, env=env, check=False)
        assert result.returncode == 1, spec
        assert message in result.stderr and "Traceback" not in result.stderr


async def test_drop_all_keeps_the_outbox_table(tmp_path: Path) -> None:
    """Tests and tools that reset their schema keep the events not yet delivered."""
    await DatabaseSessionFactory.close_all()
    url = f"sqlite+aiosqlite:///{tmp_path / 'drop.db'}"
    factory = DatabaseSessionFactory({"database": {"url": url}})
    try:
        await factory.create_all()
        await factory.drop_all()
        async with factory.engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert names == ["viveka_outbox"]
    finally:
        await DatabaseSessionFactory.close_all()
