"""The dialect adapters are the one home of per-database behaviour.

One table of drivers serves both URL building and error mapping, and what a database can
do is read from its adapter (never by comparing dialect names elsewhere).
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.engine import make_url

from viveka_db.config.settings import DatabaseSettings
from viveka_db.config.urls import build_url
from viveka_db.dialects import adapter_for
from viveka_db.dialects.registry import DRIVERS, adapter_for_driver_error
from viveka_db.errors import ConfigurationError


@pytest.mark.parametrize(
    ("driver", "family", "raises_from"),
    [
        ("asyncpg", "postgresql", "asyncpg.exceptions"),
        ("psycopg", "postgresql", "psycopg.errors"),
        ("aiomysql", "mysql", "pymysql.err"),
        ("asyncmy", "mysql", "asyncmy.errors"),
        ("aiosqlite", "sqlite", "sqlite3"),
    ],
)
def test_a_driver_names_its_dialect_for_urls_and_errors_alike(
    driver: str, family: str, raises_from: str
) -> None:
    url = build_url(DatabaseSettings(driver=driver, host="h", database="d"))
    assert adapter_for(url.get_backend_name()).name == family
    error = type("Failure", (Exception,), {"__module__": raises_from})()
    assert adapter_for_driver_error(error).name == family


def test_a_blocking_driver_is_refused_with_the_async_one_from_the_same_table() -> None:
    with pytest.raises(ConfigurationError, match=r"blocking driver 'pymysql'.*mysql\+aiomysql"):
        build_url(DatabaseSettings(url="mysql+pymysql://u@h/d"))
    assert DRIVERS["pymysql"].use_instead == "aiomysql"


def test_sqlite3_errors_reach_the_sqlite_adapter() -> None:
    assert adapter_for_driver_error(sqlite3.OperationalError("x")).name == "sqlite"


@pytest.mark.parametrize(
    ("dialect", "skip_locked", "rls", "single_writer", "notify"),
    [
        ("postgresql", True, True, False, True),
        ("mysql", True, False, False, False),
        ("mariadb", True, False, False, False),
        ("sqlite", False, False, True, False),
        ("mssql", False, False, False, False),
    ],
)
def test_capabilities_come_from_the_adapter(
    dialect: str, skip_locked: bool, rls: bool, single_writer: bool, notify: bool
) -> None:
    adapter = adapter_for(dialect)
    assert adapter.supports_skip_locked is skip_locked
    assert adapter.has_row_level_security is rls
    assert adapter.single_writer is single_writer
    assert adapter.has_notify is notify


@pytest.mark.parametrize(
    ("url", "in_memory"),
    [
        ("sqlite+aiosqlite://", True),
        ("sqlite+aiosqlite:///:memory:", True),
        ("sqlite+aiosqlite:///./x.db", False),
        ("postgresql+asyncpg://u@h/d", False),
    ],
)
def test_only_an_in_memory_sqlite_database_shares_one_connection(url: str, in_memory: bool) -> None:
    parsed = make_url(url)
    assert adapter_for(parsed.get_backend_name()).in_memory(parsed) is in_memory


def test_replica_connect_timeouts_are_per_driver() -> None:
    assert adapter_for("postgresql").connect_timeout_args("asyncpg", 2.5) == {"timeout": 2.5}
    assert adapter_for("mysql").connect_timeout_args("asyncmy", 0.2) == {"connect_timeout": 1}
    assert adapter_for("sqlite").connect_timeout_args("aiosqlite", 2.5) == {}


def test_positions_are_postgresql_lsns() -> None:
    assert adapter_for("postgresql").parse_position("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert adapter_for("postgresql").parse_position(None) is None
    assert adapter_for("mariadb").primary_position_query is None
