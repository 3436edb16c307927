"""Outbox telemetry: the trace context carried from the publishing span to the delivery span.

:func:`trace_headers` writes the current span's W3C trace context (``traceparent``,
``tracestate``) into the event's headers when the event is published; the relay opens a
PRODUCER span per delivery (:func:`delivery_span`) whose parent is that context, so a trace
runs from the request that published the event, through the relay, to whatever ``deliver``
calls. :func:`record_delivery` counts attempts by outcome and records the delivery lag.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from contextlib import contextmanager
from typing import Literal

from viveka_db.telemetry.providers import active_tracer, instruments

__all__ = ["DeliveryOutcome", "delivery_span", "record_delivery", "trace_headers"]

DeliveryOutcome = Literal["delivered", "retry", "dead"]
_OUTCOMES: dict[str, dict[str, str]] = {
    outcome: {"viveka_db.outbox.outcome": outcome} for outcome in ("delivered", "retry", "dead")
}


def trace_headers() -> dict[str, str]:
    """The current span's W3C trace context, or ``{}`` while nobody is tracing."""
    if active_tracer() is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


@contextmanager
def delivery_span(
    event_type: str, destination: str, event_id: str, attempt: int, headers: Mapping[str, str]
) -> Generator[None]:
    """A PRODUCER span around one delivery, child of the publishing span; current inside."""
    tracer = active_tracer()
    if tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract(dict(headers))
    with tracer.start_as_current_span(
        f"send {destination}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": destination,
            "messaging.message.id": event_id,
            "viveka_db.outbox.event_type": event_type,
            "viveka_db.outbox.attempt": attempt,
        },
    ):
        yield


def record_delivery(outcome: DeliveryOutcome, lag_seconds: float | None = None) -> None:
    """Count one delivery attempt by outcome; a delivered event also records its lag."""
    metrics = instruments()
    if metrics is None:
        return
    metrics.outbox_attempts.add(1, _OUTCOMES[outcome])
    if lag_seconds is not None:
        metrics.outbox_lag.record(max(lag_seconds, 0.0))
