"""Which adapter serves a dialect (one instance per family, the generic one for the rest),
and which dialect each driver belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from viveka_db.dialects.base import DialectAdapter
from viveka_db.dialects.mysql import MysqlAdapter
from viveka_db.dialects.postgresql import PostgresqlAdapter
from viveka_db.dialects.sqlite import SqliteAdapter

__all__ = [
    "DEFAULT_DRIVERS",
    "DIALECT_ALIASES",
    "DRIVERS",
    "GENERIC",
    "Driver",
    "adapter_for",
    "adapter_for_driver_error",
    "async_drivers",
    "blocking_drivers",
]

GENERIC = DialectAdapter()
_MYSQL = MysqlAdapter()
_BY_NAME: dict[str, DialectAdapter] = {
    "postgresql": PostgresqlAdapter(),
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
    "sqlite": SqliteAdapter(),
}


@dataclass(frozen=True, slots=True)
class Driver:
    """A DBAPI driver SQLAlchemy can use: its dialect, and where its errors come from."""

    dialect: str
    """The dialect it belongs to (a ``driver``-only configuration infers it)."""
    errors_from: tuple[str, ...]
    """The root modules of the exceptions it raises (a driver error met without a dialect
    names its adapter by it: aiomysql raises pymysql's, aiosqlite sqlite3's)."""
    use_instead: str | None = None
    """For a blocking driver, which cannot run under asyncio: the async driver to use."""


DRIVERS: dict[str, Driver] = {
    "asyncpg": Driver("postgresql", ("asyncpg",)),
    "psycopg": Driver("postgresql", ("psycopg",)),
    "psycopg_async": Driver("postgresql", ("psycopg",)),
    "aiomysql": Driver("mysql", ("pymysql",)),
    "asyncmy": Driver("mysql", ("asyncmy",)),
    "aiosqlite": Driver("sqlite", ("sqlite3", "aiosqlite")),
    "aioodbc": Driver("mssql", ("pyodbc",)),
    "psycopg2": Driver("postgresql", ("psycopg2",), "asyncpg"),
    "pg8000": Driver("postgresql", ("pg8000",), "asyncpg"),
    "pymysql": Driver("mysql", ("pymysql",), "aiomysql"),
    "mysqldb": Driver("mysql", ("MySQLdb",), "aiomysql"),
    "mysqlconnector": Driver("mysql", ("mysql",), "aiomysql"),
    "mariadbconnector": Driver("mariadb", ("mariadb",), "aiomysql"),
    "pysqlite": Driver("sqlite", ("sqlite3",), "aiosqlite"),
    "pyodbc": Driver("mssql", ("pyodbc",), "aioodbc"),
}
"""Every driver this package knows, by SQLAlchemy's name for it (``postgresql+asyncpg``):
the one table of drivers, read by URL building (:mod:`viveka_db.config.urls`) and by error
mapping alike."""

DEFAULT_DRIVERS: dict[str, str] = {
    "postgresql": "asyncpg",
    "postgres": "asyncpg",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
    "sqlite": "aiosqlite",
    "mssql": "aioodbc",
}
"""Dialect -> the async driver used when only the dialect is named."""

DIALECT_ALIASES: dict[str, str] = {"postgres": "postgresql"}
"""Dialect spellings SQLAlchemy accepts only without a driver -> the name it accepts with one."""

_BY_ERROR_MODULE = {
    module: driver.dialect for driver in DRIVERS.values() for module in driver.errors_from
}


def async_drivers() -> dict[str, str]:
    """Async driver -> its dialect."""
    return {name: d.dialect for name, d in DRIVERS.items() if d.use_instead is None}


def blocking_drivers() -> dict[str, str]:
    """Blocking driver -> the async driver to use instead."""
    return {name: d.use_instead for name, d in DRIVERS.items() if d.use_instead is not None}


def adapter_for(dialect: object) -> DialectAdapter:
    """The adapter for a dialect name (``"mariadb"``, ...) or a SQLAlchemy ``Dialect``."""
    name = dialect if isinstance(dialect, str) else getattr(dialect, "name", "")
    return _BY_NAME.get(str(name), GENERIC)


def adapter_for_driver_error(orig: BaseException | None) -> DialectAdapter:
    """Guess the adapter from the driver error's module, for errors met without a dialect.

    SQLAlchemy's asyncpg adapter re-raises asyncpg's errors as its own classes, defined in
    ``sqlalchemy.dialects.postgresql.asyncpg``; the dialect shows in that module path too.
    """
    if orig is None:
        return GENERIC
    module = type(orig).__module__
    root = module.partition(".")[0]
    if root in _BY_ERROR_MODULE:
        return adapter_for(_BY_ERROR_MODULE[root])
    if module.startswith("sqlalchemy.dialects."):
        return adapter_for(module.split(".")[2])
    return GENERIC
