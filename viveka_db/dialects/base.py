"""The generic dialect adapter, and what every adapter shares.

An adapter holds what differs between databases, so the rest of the package never asks
``if dialect.name == ...``: how a driver error maps to the :mod:`viveka_db.errors` family,
how an engine's connections are set up, what the database can do (capability attributes
such as :attr:`~DialectAdapter.supports_skip_locked`), and how an upsert is written.
:class:`DialectAdapter` itself is the fallback for databases
without an adapter of their own: it maps errors by SQLSTATE when the driver reports one
(``sqlstate`` or ``pgcode``, as psycopg and asyncpg do) and has no upsert.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Table, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from viveka_db.dialects.abandoned import end_abandoned_block
from viveka_db.dialects.connection import connection_problem
from viveka_db.dialects.violation import (
    BY_SQLSTATE,
    NO_SITE,
    NOWAIT_OPTION,
    NOWAIT_SITE,
    Site,
    Violation,
    columns_from_key_detail,
    columns_of,
    constraint_with,
    schema_violation,
)
from viveka_db.errors import DatabaseError

__all__ = [
    "BY_SQLSTATE",
    "NOWAIT_OPTION",
    "NOWAIT_SITE",
    "NO_SITE",
    "DialectAdapter",
    "Site",
    "Violation",
    "columns_from_key_detail",
    "columns_of",
    "constraint_with",
    "schema_violation",
]

logger = logging.getLogger("viveka_db.errors")


class DialectAdapter:
    """The generic adapter (and the base of the per-dialect ones)."""

    name = "generic"
    """The family: ``postgresql``, ``mysql`` (MySQL and MariaDB), ``sqlite`` or ``generic``."""

    version_query: str | None = None
    """SQL returning the server's version string (``None``: use the dialect's own info)."""

    detects_closed_connections = False
    """The driver notices a server-side close without a round trip (see ``known_closed``)."""

    batch_migrations = False
    """Alembic must rebuild tables to alter them (``render_as_batch``): SQLite."""

    cursor_transaction: tuple[str, str] | None = None
    """The statements that open and end a read-only transaction block around a server-side
    cursor on an autocommit connection, where the database has cursors only inside one
    (PostgreSQL); ``None``: cursors work in autocommit."""

    primary_position_query: str | None = None
    """SQL returning the primary's write position after a commit (read-your-writes), as
    text :meth:`parse_position` reads; ``None``: no comparable position, reads that must
    see a write go to the primary."""

    replica_position_query: str | None = None
    """SQL returning a replica's replayed position (``None``: the replica probe only checks
    that it answers)."""

    def parse_position(self, value: object) -> int | None:
        """A position read by the queries above, as an integer that orders like it."""
        return None

    supports_skip_locked = False
    """``SELECT ... FOR UPDATE SKIP LOCKED``: concurrent claimers pass each other's rows."""

    single_writer = False
    """One writer at a time for the whole database (SQLite): a SERIALIZABLE transaction
    takes the write lock at BEGIN, the way to claim work without SKIP LOCKED."""

    has_row_level_security = False
    """Policies on tables filter rows per session setting (``[database] tenant_rls``)."""

    has_notify = False
    """``LISTEN``/``NOTIFY``: a commit can wake a listener on another connection."""

    stores_time_zones = False
    """A ``DateTime(timezone=True)`` column keeps the offset (else naive UTC is stored)."""

    all_integers_64_bit = False
    """Every integer column holds 64 bits whatever its declared type (SQLite)."""

    cursor_blocks_connection = False
    """An open server-side cursor's connection can run no other query (MySQL's unbuffered
    results): streams read keyset chunks instead of holding a cursor."""

    double_quotes_are_strings = False
    """``"..."`` may be a string literal (MySQL/MariaDB; SQLite for an unknown name)."""

    backslash_escapes = False
    """A backslash escapes the next character in every string literal (MySQL/MariaDB)."""

    dollar_quoting = False
    """``$tag$ ... $tag$`` bodies and ``E'...'`` escape strings (PostgreSQL)."""

    driver_commits_before_ddl = False
    """The driver commits on its own before DDL (pysqlite): migrations take transactions
    over to keep a failed upgrade's DDL undone."""

    def listens(self, driver: str) -> bool:
        """Whether ``driver`` can wait for ``NOTIFY`` on a connection of its own."""
        return False

    def system_name(self, dialect: Any) -> str:
        """OpenTelemetry's ``db.system.name`` of a connected SQLAlchemy ``dialect``."""
        return str(dialect.name)

    def utc_datetime_type(self) -> Any:
        """The column type a :class:`~viveka_db.base.types.UTCDateTime` is stored as."""
        from sqlalchemy import DateTime

        return DateTime(timezone=True)

    bulk_insert = "executemany_returning"
    """How ``insert_all`` sends plain rows here (the repository layer maps the name to its
    inserter): ``copy`` (PostgreSQL), ``multi_row_values`` (driver-escaped multi-row
    ``INSERT``, MySQL/MariaDB), ``keys_after_first`` (the first row alone, the others' keys
    follow its key: SQLite), ``executemany_returning`` (SQLAlchemy's executemany, keys by
    ``RETURNING`` in parameter order where the dialect supports it)."""

    def ping_to_detect_close(self, driver: str) -> bool:
        """Whether only a ping at checkout finds a connection the server closed while it sat
        in the pool (``connect_wait``/``failover_urls`` turn ``pool_pre_ping`` on then):
        drivers that do not notice the close without I/O (see ``known_closed``)."""
        return True

    def product(self, version: str) -> str:
        """The product name to show next to ``version`` (``db health``)."""
        return self.name

    def read_only_connect_args(self, driver: str, connect_args: dict[str, Any]) -> dict[str, Any]:
        """``connect_args`` for a connection the database itself keeps read-only."""
        return connect_args

    def server_unavailable(self, error: BaseException) -> bool:
        """Whether a failed connection attempt means "the server is not there right now"
        (refused, reset, starting or stopping): :mod:`viveka_db.dialects.connection`
        decides, for every database; never a refused login or a missing database."""
        problem = connection_problem(error)
        return problem is not None and problem.kind == "unreachable"

    def connect_timeout_args(self, driver: str, timeout: float) -> dict[str, Any]:
        """Connect parameters that bound a connection attempt to ``timeout`` seconds
        (empty: the driver has no such parameter here)."""
        return {}

    def failover_connect_args(self, driver: str, params: dict[str, Any]) -> dict[str, Any]:
        """Connect parameters for a target among several primaries (only writable ones)."""
        return params

    def known_closed(self, driver_connection: Any) -> bool:
        """Whether the driver already knows (without a round trip) the server closed it."""
        return False

    def violation(self, orig: BaseException) -> Violation | None:
        """What the driver error ``orig`` means, or ``None`` if it is none of ours."""
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        family = BY_SQLSTATE.get(code) if isinstance(code, str) else None
        return None if family is None else Violation(family, code=f"SQLSTATE {code}")

    def map_error(self, error: sa_exc.DBAPIError, site: Site = NO_SITE) -> DatabaseError | None:
        """The mapped replacement of ``error``, or ``None`` to leave it as it is."""
        orig = error.orig
        if orig is None:
            return None
        found = self.violation(orig)
        return None if found is None else found.build(error, site)

    def map_driver_error(
        self, exc: BaseException, dialect: Any, site: Site = NO_SITE
    ) -> BaseException:
        """The mapped error for a raw driver error met outside SQLAlchemy's error hook (a
        driver call from an event, the bulk paths), or ``exc`` itself; never raises."""
        try:
            wrapped = sa_exc.DBAPIError.instance(None, None, exc, Exception, dialect=dialect)
            mapped = (
                self.map_error(wrapped, site) if isinstance(wrapped, sa_exc.DBAPIError) else None
            )
        except Exception:
            logger.debug("could not map %r", type(exc), exc_info=True)
            return exc
        if mapped is None:
            return exc
        mapped.__cause__ = exc
        mapped.__suppress_context__ = True
        return mapped.with_traceback(exc.__traceback__)

    def in_memory(self, url: URL) -> bool:
        """The database lives in one connection of this process (in-memory SQLite): one
        shared connection, no pool sizing, and the read engine is the write engine."""
        return False

    def configure_engine(
        self, engine: AsyncEngine, url: URL, *, read_only: bool, serializable: bool
    ) -> None:
        """Connection set-up every engine of this family gets (listeners, pragmas).

        ``serializable``: the data source's default isolation is SERIALIZABLE. Here: a read
        engine that opens transaction blocks for cursors ends an abandoned one in the pool.
        """
        if read_only and self.cursor_transaction is not None:
            event.listen(engine.sync_engine.pool, "reset", end_abandoned_block)

    def upsert(
        self,
        model: type[Any],
        table: Table,
        target: Sequence[Column[Any]],
        assignments: Sequence[tuple[Any, bool]],
        *,
        only_where_equal: Column[Any] | None = None,
    ) -> Insert:
        """``INSERT`` of ``model`` that resolves conflicts on ``target``.

        ``assignments`` are the columns an update writes (``True``: the version, which is
        incremented instead of copied); empty means "keep the existing row".
        ``only_where_equal``: update an existing row only where this column already has the
        inserted value (``tenant_id``: never touch another tenant's row).
        """
        raise NotImplementedError(
            f"upsert_all is not supported on the {self.name!r} dialect; "
            "use insert_all, or PostgreSQL, MySQL/MariaDB or SQLite"
        )
