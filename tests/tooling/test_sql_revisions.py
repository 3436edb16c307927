"""Plain-SQL revisions: ``db create NAME --sql`` writes SQL text that ``db up``/``db down`` run.

The revision is created, filled in, upgraded and downgraded through the CLI on SQLite,
PostgreSQL and MariaDB, each in a database of the test's own; the statement splitter is
checked on its own for each database's quoting rules.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.tooling import cli
from tests.tooling.cli import cli_env, run_cli
from viveka_db.migrations.sql_text import UnterminatedSqlError, split_statements

TRICKY = "semi; colon :name 50% it's"

UPGRADE = """
-- a comment; with a semicolon
CREATE TABLE tool_sql_users (
    id INTEGER PRIMARY KEY,
    label VARCHAR(100) NOT NULL
);
INSERT INTO tool_sql_users (id, label) VALUES (1, 'semi; colon :name 50% it''s');
/* another; comment */
INSERT INTO tool_sql_users (id, label) VALUES (2, 'second');
"""
POSTGRESQL_UPGRADE = """
CREATE FUNCTION tool_sql_double(x integer) RETURNS integer AS $body$
BEGIN
    RETURN x * 2; -- a semicolon inside the body
END;
$body$ LANGUAGE plpgsql;
"""
DOWNGRADE = "DROP TABLE tool_sql_users;"
POSTGRESQL_DOWNGRADE = "DROP FUNCTION tool_sql_double(integer);"


@pytest.fixture
def database(backend: str, backend_url: str, tmp_path: Path) -> Iterator[str]:
    with cli.own_database(backend, backend_url, tmp_path, "sql_rev") as url:
        yield url


async def _read(url: str) -> tuple[set[str], list[str], list[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            labels: list[str] = []
            if "tool_sql_users" in tables:
                query = text("SELECT label FROM tool_sql_users ORDER BY id")
                labels = [str(v) for v in (await conn.execute(query)).scalars()]
            versions: list[str] = []
            if "alembic_version" in tables:
                query = text("SELECT version_num FROM alembic_version")
                versions = [str(v) for v in (await conn.execute(query)).scalars()]
            return tables, labels, versions
    finally:
        await engine.dispose()


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _fill(revision: Path, upgrade: str, downgrade: str) -> None:
    source = revision.read_text()
    up_comment = "-- The SQL that applies this revision. End each statement with a semicolon."
    down_comment = "-- The SQL that reverts it (run by `viveka-db db downgrade`)."
    assert up_comment in source and down_comment in source, source
    source = source.replace(up_comment, upgrade.replace("\n", "\n        "))
    revision.write_text(source.replace(down_comment, downgrade.replace("\n", "\n        ")))


def test_plain_sql_revision_upgrades_and_downgrades(
    backend: str, database: str, tmp_path: Path
) -> None:
    env = cli_env(database)
    run_cli("db", "migrations", "init", cwd=tmp_path, env=env)
    run_cli("db", "create", "add users table", "--sql", cwd=tmp_path, env=env)
    [revision] = (tmp_path / "migrations" / "versions").glob("*_add_users_table.py")
    source = revision.read_text()
    assert "from viveka_db.migrations import run_sql" in source
    assert "op." not in source.split("def upgrade")[1]  # the body is SQL text, not Python ops

    upgrade, downgrade = UPGRADE, DOWNGRADE
    if backend == "postgresql":
        upgrade, downgrade = upgrade + POSTGRESQL_UPGRADE, POSTGRESQL_DOWNGRADE + "\n" + downgrade
    _fill(revision, upgrade, downgrade)

    offline = run_cli("db", "up", "--sql", cwd=tmp_path, env=env).stdout
    assert "CREATE TABLE tool_sql_users" in offline and "INSERT INTO tool_sql_users" in offline

    assert "Running upgrade" in _output(run_cli("db", "up", cwd=tmp_path, env=env))
    tables, labels, versions = asyncio.run(_read(database))
    assert "tool_sql_users" in tables
    assert labels == [TRICKY, "second"]
    assert versions == [revision.name.split("_")[0]]
    if backend == "postgresql":
        assert asyncio.run(_scalar(database, "SELECT tool_sql_double(21)")) == 42

    assert "Running downgrade" in _output(run_cli("db", "down", cwd=tmp_path, env=env))
    tables, _, versions = asyncio.run(_read(database))
    assert "tool_sql_users" not in tables and versions == []


async def _scalar(url: str, query: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(query))).scalar()
    finally:
        await engine.dispose()


def test_a_failing_statement_leaves_no_version(tmp_path: Path) -> None:
    """A bad statement fails `db up` (exit 1, the database's reason) and records nothing."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bad.db'}"
    env = cli_env(url)
    run_cli("db", "migrations", "init", cwd=tmp_path, env=env)
    run_cli("db", "revision", "-m", "bad", "--sql", cwd=tmp_path, env=env)
    [revision] = (tmp_path / "migrations" / "versions").glob("*_bad.py")
    _fill(revision, "CREATE TABLE tool_sql_ok (id INTEGER);\nCREATE TABLE (oops);", "")
    result = run_cli("db", "up", cwd=tmp_path, env=env, check=False)
    assert result.returncode == 1 and "syntax error" in result.stderr
    assert "Traceback" not in result.stderr
    tables, _, versions = asyncio.run(_read(url))
    assert "tool_sql_ok" not in tables and versions == []


def test_sql_and_autogenerate_do_not_combine(tmp_path: Path) -> None:
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    run_cli("db", "migrations", "init", cwd=tmp_path, env=env)
    result = run_cli(
        "db", "create", "x", "--sql", "--autogenerate", cwd=tmp_path, env=env, check=False
    )
    assert result.returncode == 1 and "do not combine" in result.stderr
    assert list((tmp_path / "migrations" / "versions").iterdir()) == []


# -- the splitter -----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql", "mariadb"])
def test_split_keeps_quoted_semicolons(dialect: str) -> None:
    sql = """
    -- leading comment; not a statement
    CREATE TABLE "odd;name" (v VARCHAR(20) DEFAULT 'a;b');
    INSERT INTO t VALUES ('it''s; fine') ; /* trailing; comment */
    """
    assert split_statements(sql, dialect) == [
        '-- leading comment; not a statement\n    CREATE TABLE "odd;name" (v VARCHAR(20) '
        "DEFAULT 'a;b')",
        "INSERT INTO t VALUES ('it''s; fine')",
    ]


def test_split_follows_each_databases_backslash_rules() -> None:
    # PostgreSQL (standard strings): 'C:\' is a whole string, the ; after it ends the statement
    assert split_statements(r"SELECT 'C:\'; SELECT 2", "postgresql") == [
        r"SELECT 'C:\'",
        "SELECT 2",
    ]
    assert split_statements(r"SELECT E'it\'s;'; SELECT 2", "postgresql") == [
        r"SELECT E'it\'s;'",
        "SELECT 2",
    ]
    # MySQL/MariaDB: a backslash escapes the quote
    assert split_statements(r"SELECT 'it\'s;'; SELECT 2", "mysql") == [
        r"SELECT 'it\'s;'",
        "SELECT 2",
    ]


def test_split_keeps_dollar_quoted_bodies_on_postgresql() -> None:
    sql = "DO $$ BEGIN PERFORM 1; END $$; DO $x$ BEGIN PERFORM '$$;'; END $x$;"
    assert split_statements(sql, "postgresql") == [
        "DO $$ BEGIN PERFORM 1; END $$",
        "DO $x$ BEGIN PERFORM '$$;'; END $x$",
    ]


@pytest.mark.parametrize("sql", ["SELECT 'open; 1", 'SELECT "open', "SELECT 1 /* open", "DO $$ x;"])
def test_split_refuses_what_is_never_closed(sql: str) -> None:
    with pytest.raises(UnterminatedSqlError, match="never closed"):
        split_statements(sql, "postgresql")


def test_only_comments_is_no_statement() -> None:
    assert split_statements("-- nothing to do\n/* really */\n;\n", "sqlite") == []
