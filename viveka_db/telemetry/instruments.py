"""The metric instruments viveka_db records, created once per meter.

Names follow the stable database semantic conventions where one exists
(``db.client.operation.duration``, ``db.client.connection.count``); the rest live under
``viveka_db.``. See ``docs/observability.md`` for what each one means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from viveka_db.telemetry.pools import observe_pools

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

__all__ = ["DURATION_BUCKETS", "Instruments"]

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
"""The bucket boundaries the semantic conventions advise for ``db.client.operation.duration``."""


class Instruments:
    """One meter's instruments; :func:`viveka_db.telemetry.providers.instruments` holds them."""

    __slots__ = (
        "cache_requests",
        "connection_count",
        "operation_duration",
        "outbox_attempts",
        "outbox_lag",
        "retries",
        "transactions",
    )

    def __init__(self, meter: Meter) -> None:
        self.operation_duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations (one per SQL statement).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.connection_count = meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[observe_pools],
            unit="{connection}",
            description="Connections of each pool by db.client.connection.state (used/idle).",
        )
        self.cache_requests = meter.create_counter(
            "viveka_db.cache.requests",
            unit="{request}",
            description="@cacheable lookups by viveka_db.cache.result (hit/miss/error).",
        )
        self.transactions = meter.create_counter(
            "viveka_db.transactions",
            unit="{transaction}",
            description="Transactions ended, by viveka_db.transaction.outcome "
            "(committed/rolled_back/rollback_only).",
        )
        self.retries = meter.create_counter(
            "viveka_db.transaction.retries",
            unit="{retry}",
            description="Re-runs of a @transactional(retry=N) call after a retryable error.",
        )
        self.outbox_attempts = meter.create_counter(
            "viveka_db.outbox.attempts",
            unit="{attempt}",
            description="Outbox delivery attempts by viveka_db.outbox.outcome "
            "(delivered/retry/dead).",
        )
        self.outbox_lag = meter.create_histogram(
            "viveka_db.outbox.lag",
            unit="s",
            description="Time from publishing an event to its delivery by the outbox relay.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
