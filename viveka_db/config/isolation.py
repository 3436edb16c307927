"""Transaction isolation levels: a validated enum, never formatted into SQL.

It lives in the configuration layer because ``[database] isolation_level`` is validated
against it; ``@transactional(isolation=...)`` (the transaction layer) uses the same enum.
"""

from __future__ import annotations

import enum

__all__ = ["Isolation"]


class Isolation(enum.Enum):
    """Transaction isolation levels, passed to SQLAlchemy as an execution option.

    The value is never formatted into SQL; the dialect validates it.
    """

    READ_UNCOMMITTED = "READ UNCOMMITTED"
    READ_COMMITTED = "READ COMMITTED"
    REPEATABLE_READ = "REPEATABLE READ"
    SERIALIZABLE = "SERIALIZABLE"

    @classmethod
    def parse(cls, value: object) -> Isolation:
        if isinstance(value, Isolation):
            return value
        if isinstance(value, str):
            key = value.strip().upper().replace(" ", "_").replace("-", "_")
            if key in cls.__members__:
                return cls[key]
        valid = ", ".join(f"Isolation.{m.name}" for m in cls)
        raise ValueError(f"isolation {value!r} is not a valid isolation level; use one of: {valid}")
