"""Where a database's write-ahead log is: the primary's commit position, a replica's replay.

A *position* is an integer that only grows on one replication stream: a PostgreSQL LSN
(``pg_current_wal_lsn()`` on the primary after a commit, ``pg_last_wal_replay_lsn()`` on a
replica). A replica whose replayed position is at least a commit's position has applied
that commit. Dialects without a comparable position here (MariaDB/MySQL, SQLite) return
``None``: read-your-writes then sends the reads to the primary.
"""

from __future__ import annotations

__all__ = ["parse_lsn", "primary_position_sql", "replica_position_sql"]

_PRIMARY = {"postgresql": "SELECT pg_current_wal_lsn()::text"}
_REPLICA = {
    # a "replica" that is not in recovery (a promoted one) reports its own write position
    "postgresql": (
        "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
        "ELSE pg_current_wal_lsn() END)::text"
    )
}
_HEALTH = "SELECT 1"


def primary_position_sql(backend: str) -> str | None:
    """SQL returning the primary's current position, or ``None`` if ``backend`` has none."""
    return _PRIMARY.get(backend)


def replica_position_sql(backend: str) -> tuple[str, bool]:
    """SQL probing a replica, and whether its result is a position (else a health check)."""
    sql = _REPLICA.get(backend)
    return (sql, True) if sql is not None else (_HEALTH, False)


def parse_lsn(value: object) -> int | None:
    """``'16/B374D848'`` -> an integer that orders like the LSN; ``None`` for no value."""
    if not isinstance(value, str) or "/" not in value:
        return None
    high, low = value.split("/", 1)
    return (int(high, 16) << 32) | int(low, 16)
