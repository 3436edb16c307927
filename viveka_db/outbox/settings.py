"""The options of an :class:`~viveka_db.OutboxRelay`, checked when the relay is created."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

__all__ = ["DEFAULT_RETENTION", "RelayOptions"]

DEFAULT_RETENTION = timedelta(days=7)
"""How long delivered rows are kept by default."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayOptions:
    """How a relay claims, delivers, retries and cleans up."""

    batch_size: int = 100
    """Events claimed per transaction (1 to 10,000)."""
    concurrency: int = 8
    """Keys delivered at the same time within a batch (the events of one key never are)."""
    max_attempts: int = 10
    """Failed attempts after which an event is ``dead`` (not retried until requeued)."""
    retry_backoff: float = 1.0
    """Seconds before the first retry; doubled for each further one (with jitter)."""
    max_backoff: float = 300.0
    """The longest wait between two attempts, in seconds."""
    delivery_timeout: float = 30.0
    """Seconds one ``deliver`` call may take; a slower one counts as failed."""
    poll_interval: float = 1.0
    """Seconds between polls when idle (PostgreSQL is also woken by NOTIFY)."""
    listen: bool = True
    """On PostgreSQL (asyncpg, psycopg), LISTEN for new events instead of waiting to poll."""
    delete_delivered_after: timedelta | None = DEFAULT_RETENTION
    """Delivered rows older than this are deleted; ``timedelta(0)`` deletes them as they
    are delivered, ``None`` keeps them (seconds as a number are accepted)."""
    cleanup_interval: float = 60.0
    """Seconds between two deletions of old delivered rows."""

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> RelayOptions:
        names = sorted(field.name for field in dataclasses.fields(cls))
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise TypeError(f"unknown relay option {', '.join(unknown)}; valid: {', '.join(names)}")
        after = options.get("delete_delivered_after")
        if isinstance(after, int | float) and not isinstance(after, bool):
            options = {**options, "delete_delivered_after": timedelta(seconds=after)}
        return cls(**options)

    def __post_init__(self) -> None:
        _check_int("batch_size", self.batch_size, 1, 10_000)
        _check_int("concurrency", self.concurrency, 1, 10_000)
        _check_int("max_attempts", self.max_attempts, 1, 10_000)
        for name in ("retry_backoff", "max_backoff", "delivery_timeout", "poll_interval"):
            _check_positive(name, getattr(self, name))
        _check_positive("cleanup_interval", self.cleanup_interval)
        if self.max_backoff < self.retry_backoff:
            raise ValueError("max_backoff must be at least retry_backoff")
        after = self.delete_delivered_after
        if after is not None and (
            not isinstance(after, timedelta)  # pyright: ignore[reportUnnecessaryIsInstance]
            or after < timedelta(0)
        ):
            raise ValueError(
                "delete_delivered_after must be a timedelta (or seconds) >= 0, or None to keep "
                f"delivered rows; got {after!r}"
            )

    @property
    def delete_at_once(self) -> bool:
        """Delivered rows are deleted in the delivering transaction."""
        return self.delete_delivered_after == timedelta(0)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
