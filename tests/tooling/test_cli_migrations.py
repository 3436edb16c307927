"""Alembic through ``viveka-db``: autogenerate detects a new column; upgrade/downgrade apply it.

Each backend gets a database of its own (a temp SQLite file, a dedicated PostgreSQL
database), because autogenerate compares the *whole* database with the entities and would
propose dropping the other test modules' tables.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests import backends
from tests.tooling.cli import SQLITE_AND_POSTGRESQL, cli_env, run_cli

MODEL_V1 = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from viveka_db import VivekaDbBase, entity, table


@entity
@table("tool_mig_items")
class Item(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
"""
MODEL_V2 = MODEL_V1 + "    price_cents: Mapped[int | None]\n"


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def migration_db(backend: str, backend_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    admin = backends.SERVER_URLS["postgresql"]
    name = f"{backends.private_database_name()}_tool_mig"
    asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(backend_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _columns(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
            if "tool_mig_items" not in names:
                return set()
            cols = await conn.run_sync(lambda c: inspect(c).get_columns("tool_mig_items"))
            return {col["name"] for col in cols}
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "backend",
    SQLITE_AND_POSTGRESQL,
    indirect=True,
)
def test_autogenerate_upgrade_downgrade(migration_db: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "tool_mig_models.py").write_text(MODEL_V1)
    env = cli_env(migration_db, VIVEKA_DATABASE__MODELS="tool_mig_models")

    def cli(*args: str) -> str:
        result = run_cli(*args, cwd=project, env=env)
        return result.stdout + result.stderr

    assert "created migrations" in cli("db", "migrations", "init")
    cli("db", "revision", "-m", "create items", "--autogenerate")
    cli("db", "upgrade")
    assert asyncio.run(_columns(migration_db)) == {"id", "name"}

    (project / "tool_mig_models.py").write_text(MODEL_V2)
    output = cli("db", "revision", "-m", "add price", "--autogenerate")
    assert "Detected added column 'tool_mig_items.price_cents'" in output
    [script] = (project / "migrations" / "versions").glob("*add_price.py")
    assert "add_column" in script.read_text() and "price_cents" in script.read_text()

    status = cli("db", "status")
    assert "pending: 1" in status and "add price" in status

    assert "Running upgrade" in cli("db", "upgrade")
    assert asyncio.run(_columns(migration_db)) == {"id", "name", "price_cents"}

    assert "Running downgrade" in cli("db", "downgrade", "-1")
    assert asyncio.run(_columns(migration_db)) == {"id", "name"}
    cli("db", "downgrade", "base")
    assert asyncio.run(_columns(migration_db)) == set()


def test_plain_sql_migration(tmp_path: Path) -> None:
    """An empty revision filled with op.execute() runs as written (for SQL-first teams)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'sql.db'}"
    env = cli_env(url)
    run_cli("db", "migrations", "init", "-d", "sqlmig", cwd=tmp_path, env=env)
    run_cli("db", "revision", "-m", "raw sql", "-d", "sqlmig", cwd=tmp_path, env=env)
    [script] = (tmp_path / "sqlmig" / "versions").glob("*raw_sql.py")
    source = script.read_text()
    source = source.replace(
        '    """Upgrade schema."""\n    pass',
        '    """Upgrade schema."""\n'
        '    op.execute("CREATE TABLE tool_sql_things (id INTEGER PRIMARY KEY, label TEXT)")\n'
        "    op.execute(\"INSERT INTO tool_sql_things (label) VALUES ('seeded')\")",
    ).replace(
        '    """Downgrade schema."""\n    pass',
        '    """Downgrade schema."""\n    op.execute("DROP TABLE tool_sql_things")',
    )
    script.write_text(source)
    run_cli("db", "upgrade", "-d", "sqlmig", cwd=tmp_path, env=env)

    async def labels() -> list[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return list(
                    (await conn.execute(text("SELECT label FROM tool_sql_things"))).scalars()
                )
        finally:
            await engine.dispose()

    assert asyncio.run(labels()) == ["seeded"]
    current = run_cli("db", "current", "-d", "sqlmig", cwd=tmp_path, env=env).stdout
    assert "(head)" in current
    assert "raw sql" in run_cli("db", "history", "-d", "sqlmig", cwd=tmp_path, env=env).stdout
    run_cli("db", "downgrade", "base", "-d", "sqlmig", cwd=tmp_path, env=env)
    assert asyncio.run(_columns(url)) == set()
    assert not os.path.exists(tmp_path / "alembic.ini")


def test_migration_commands_explain_a_missing_directory(tmp_path: Path) -> None:
    result = run_cli(
        "db",
        "upgrade",
        cwd=tmp_path,
        env=cli_env(f"sqlite+aiosqlite:///{tmp_path}/x.db"),
        check=False,
    )
    assert result.returncode == 1
    assert "viveka-db db migrations init" in result.stderr
    assert "Traceback" not in result.stderr


def test_autogenerate_without_models_refuses_to_drop_tables(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'existing.db'}"
    asyncio.run(_admin(url, "CREATE TABLE tool_existing (id INTEGER PRIMARY KEY)"))
    env = cli_env(url)
    run_cli("db", "migrations", "init", cwd=tmp_path, env=env)
    result = run_cli(
        "db", "revision", "-m", "oops", "--autogenerate", cwd=tmp_path, env=env, check=False
    )
    assert result.returncode == 1
    assert "found no entities" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "migrations" / "versions").iterdir()) == []


def test_autogenerate_without_models_refuses_on_an_empty_database(tmp_path: Path) -> None:
    """No models and no tables: nothing to compare, so no (empty) revision is written."""
    (tmp_path / "tool_no_entities.py").write_text("VALUE = 1\n")
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    refused = run_cli("db", "create", "oops", "--autogenerate", cwd=tmp_path, env=env, check=False)
    assert refused.returncode == 1 and "no model modules given" in refused.stderr
    assert not (tmp_path / "migrations").exists()  # refused before setting anything up
    run_cli("db", "migrations", "init", cwd=tmp_path, env=env)
    attempts = {
        ("db", "revision", "-m", "oops", "--autogenerate"): "no model modules given",
        ("db", "create", "oops", "--autogenerate"): "no model modules given",
        ("db", "create", "oops", "--autogenerate", "--models", "tool_no_entities"): (
            "no entities found in tool_no_entities"
        ),
    }
    for args, reason in attempts.items():
        result = run_cli(*args, cwd=tmp_path, env=env, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert reason in result.stderr and "nothing was written" in result.stderr
        assert "--models" in result.stderr or "tool_no_entities" in result.stderr
        assert "Traceback" not in result.stderr
    assert list((tmp_path / "migrations" / "versions").iterdir()) == []
