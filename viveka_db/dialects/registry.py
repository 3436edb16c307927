"""Which adapter serves a dialect: one instance per family, the generic one for the rest."""

from __future__ import annotations

from viveka_db.dialects.base import DialectAdapter
from viveka_db.dialects.mysql import MysqlAdapter
from viveka_db.dialects.postgresql import PostgresqlAdapter
from viveka_db.dialects.sqlite import SqliteAdapter

__all__ = ["GENERIC", "adapter_for", "adapter_for_driver_error"]

GENERIC = DialectAdapter()
_MYSQL = MysqlAdapter()
_BY_NAME: dict[str, DialectAdapter] = {
    "postgresql": PostgresqlAdapter(),
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
    "sqlite": SqliteAdapter(),
}
_BY_DRIVER_MODULE = {
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "pymysql": "mysql",
    "asyncmy": "mysql",
    "MySQLdb": "mysql",
    "sqlite3": "sqlite",
    "aiosqlite": "sqlite",
}


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
    if root in _BY_DRIVER_MODULE:
        return _BY_NAME[_BY_DRIVER_MODULE[root]]
    if module.startswith("sqlalchemy.dialects."):
        return adapter_for(module.split(".")[2])
    return GENERIC
