"""OpenTelemetry traces and metrics, through ``opentelemetry-api`` only (the ``otel`` extra).

Nothing here needs configuring: install the SDK and set the global providers (or call
:func:`set_providers`) and viveka_db's spans and metrics appear. ``docs/observability.md``
describes each span and metric.
"""

from viveka_db.telemetry.cache import cache_span, record_cache_request, redis_attributes
from viveka_db.telemetry.providers import OTEL_AVAILABLE, active_tracer, set_providers
from viveka_db.telemetry.statements import SLOW_LOGGER, instrument_engine, pool_name
from viveka_db.telemetry.transaction import Outcome, TransactionSpan, transaction_span

__all__ = [
    "OTEL_AVAILABLE",
    "SLOW_LOGGER",
    "Outcome",
    "TransactionSpan",
    "active_tracer",
    "cache_span",
    "instrument_engine",
    "pool_name",
    "record_cache_request",
    "redis_attributes",
    "set_providers",
    "transaction_span",
]
