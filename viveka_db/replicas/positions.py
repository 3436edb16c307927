"""Where a database's write-ahead log is: the primary's commit position, a replica's replay.

A *position* is an integer that only grows on one replication stream: a PostgreSQL LSN
(``pg_current_wal_lsn()`` on the primary after a commit, ``pg_last_wal_replay_lsn()`` on a
replica). A replica whose replayed position is at least a commit's position has applied
that commit. Dialects without a comparable position (MariaDB/MySQL, SQLite) return
``None``: read-your-writes then sends the reads to the primary. The SQL and the format are
the dialect adapter's (:attr:`~viveka_db.dialects.DialectAdapter.primary_position_query`).
"""

from __future__ import annotations

from viveka_db.dialects import adapter_for

__all__ = ["parse_position", "primary_position_sql", "replica_position_sql"]

_HEALTH = "SELECT 1"


def primary_position_sql(backend: str) -> str | None:
    """SQL returning the primary's current position, or ``None`` if ``backend`` has none."""
    return adapter_for(backend).primary_position_query


def replica_position_sql(backend: str) -> tuple[str, bool]:
    """SQL probing a replica, and whether its result is a position (else a health check)."""
    sql = adapter_for(backend).replica_position_query
    return (sql, True) if sql is not None else (_HEALTH, False)


def parse_position(value: object, backend: str) -> int | None:
    """A position as ``backend`` reports it (an LSN, ``'16/B374D848'``) -> an integer that
    orders like it; ``None`` for no value."""
    return adapter_for(backend).parse_position(value)
