"""No literal reaches ``db.query.text`` or the slow-statement log, whatever its quoting.

Each database reads a backslash in a string its own way: PostgreSQL (standard strings)
and SQLite take it literally, so ``'C:\\'`` is a whole string there, while MySQL/MariaDB
read it as an escape. Statements that run on the real database, with a secret after such
a string, must leave no trace of it in any span attribute or any log line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from tests.telemetry.conftest import Telemetry
from viveka_db import DatabaseSessionFactory, current_session, transactional
from viveka_db.telemetry.sql_text import sanitize

SECRET = "tok-7Hs9-secret"
NUMBER = "8675309123"

STATEMENTS = {
    "postgresql": [
        f"SELECT 'C:\\' AS folder, '{SECRET}' AS token",
        f"SELECT E'it\\'s' AS a, '{SECRET}' AS b",
        f"SELECT 1 AS \"odd\\\", '{SECRET}' AS t",
        f"SELECT $${SECRET}$$ AS d, $x${SECRET}$x$ AS e",
        f"SELECT {NUMBER} AS n, ARRAY['{SECRET}'] AS a",
    ],
    "sqlite": [
        f"SELECT 'C:\\' AS folder, '{SECRET}' AS token",
        f"SELECT 'it''s' AS a, \"{SECRET}\" AS b FROM (SELECT 1 AS \"{SECRET}\")",
        f"SELECT {NUMBER} AS n, x'{SECRET.encode().hex()}' AS h",
    ],
    "mariadb": [
        f"SELECT 'C:\\\\' AS folder, '{SECRET}' AS token",
        f"SELECT 'it\\'s' AS a, \"{SECRET}\" AS b",
        f'SELECT "say \\"hi\\"" AS a, \'{SECRET}\' AS b',
        f"SELECT {NUMBER} AS n",
    ],
}


@pytest.fixture
async def slow_logged(db: DatabaseSessionFactory, backend_url: str) -> AsyncIterator[None]:
    """The default data source again, logging every statement as slow."""
    await DatabaseSessionFactory.close_all()
    DatabaseSessionFactory({"database": {"url": backend_url, "slow_query_ms": 0}})
    yield


async def test_no_literal_in_spans_or_slow_log(
    slow_logged: None,
    backend: str,
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @transactional
    async def run(sql: str) -> None:
        await current_session().execute(text(sql))

    with caplog.at_level(logging.DEBUG):
        for sql in STATEMENTS[backend]:
            await run(sql)

    slow = [r.getMessage() for r in caplog.records if r.name == "viveka_db.sql.slow"]
    assert len(slow) >= len(STATEMENTS[backend]), slow
    for record in caplog.records:
        if not record.name.startswith("viveka_db"):
            continue  # the drivers' own DEBUG lines (aiosqlite logs every statement)
        line = record.getMessage()
        assert SECRET not in line and NUMBER not in line, line
    texts = []
    for span in telemetry.spans():
        for value in (span.attributes or {}).values():
            assert SECRET not in str(value) and NUMBER not in str(value), (span.name, value)
        if span.attributes and "db.query.text" in span.attributes:
            texts.append(span.attributes["db.query.text"])
    assert len(texts) >= len(STATEMENTS[backend]), texts
    assert any("AS folder" in str(t) and "AS token" in str(t) for t in texts), texts


@pytest.mark.parametrize(
    ("sql", "mysql", "shown"),
    [
        ("SELECT 'C:\\' AS f, 'sec' AS t", False, "SELECT ? AS f, ? AS t"),
        ("SELECT 'C:\\\\' AS f, 'sec' AS t", True, "SELECT ? AS f, ? AS t"),
        ("SELECT 'a\\\\' AS f, 'sec", True, "SELECT ? AS f, ?"),  # never closed: hidden
        ("SELECT 'sec", False, "SELECT ?"),
        ('SELECT "sec', True, "SELECT ?"),
        ("SELECT ARRAY['sec'], a[1]", False, "SELECT ARRAY[?], a[?]"),
        ("SELECT 1 AS \"x\\\", 'sec'", False, 'SELECT ? AS "x\\", ?'),
        ("SELECT [col] FROM t WHERE x = 'sec'", False, "SELECT [col] FROM t WHERE x = ?"),
    ],
)
def test_sanitize_follows_the_databases_string_rules(sql: str, mysql: bool, shown: str) -> None:
    assert sanitize(sql, double_quotes_are_strings=mysql, backslash_escapes=mysql) == shown
