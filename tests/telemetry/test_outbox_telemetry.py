"""Outbox telemetry: the publishing span's trace context is stored with the event and is the
parent of the relay's delivery span; attempts and lag are recorded as metrics."""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from tests.outbox.events import Numbered, outbox_rows
from tests.telemetry.conftest import Telemetry
from viveka_db import DatabaseSessionFactory, OutboxEvent, OutboxRelay, publish, transactional


async def test_trace_context_flows_from_publish_to_delivery(
    db: DatabaseSessionFactory, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")

    @transactional
    async def place() -> None:
        publish(Numbered("k", 0), key="k")
        publish(Numbered("k", 1), key="k")

    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as request:
        await place()
    [first, _] = await outbox_rows(db)
    trace_id = f"{request.get_span_context().trace_id:032x}"
    assert first.headers["traceparent"].split("-")[1] == trace_id

    seen_in: list[int] = []

    async def deliver(event: OutboxEvent) -> None:
        from opentelemetry import trace

        seen_in.append(trace.get_current_span().get_span_context().trace_id)
        if event.payload["n"] == 1 and event.attempt == 1:
            raise RuntimeError("broker down")

    relay = OutboxRelay(deliver, retry_backoff=0.001, max_backoff=0.001)
    assert await relay.run_once() == 2
    sends = [span for span in telemetry.spans() if span.name == "send Numbered"]
    assert len(sends) == 2
    publishing = telemetry.named(place.__qualname__)  # the transaction span that published
    for span in sends:
        assert span.kind is SpanKind.PRODUCER
        assert span.parent is not None and span.parent.span_id == publishing.context.span_id
        assert span.context.trace_id == request.get_span_context().trace_id
        assert span.attributes is not None
        assert span.attributes["messaging.destination.name"] == "Numbered"
    assert seen_in == [request.get_span_context().trace_id] * 2  # deliver runs inside it

    attempts = {
        point.attributes["viveka_db.outbox.outcome"]: point.value
        for point in telemetry.points("viveka_db.outbox.attempts")
    }
    assert attempts == {"delivered": 1, "retry": 1}
    [lag] = telemetry.points("viveka_db.outbox.lag")
    assert lag.count == 1 and 0 <= lag.sum < 60


async def test_without_a_span_the_headers_are_empty(
    db: DatabaseSessionFactory, telemetry: Telemetry
) -> None:
    @transactional
    async def place() -> None:
        publish(Numbered("k", 0), key="k")

    await place()  # the transaction span exists: its context is stored
    [row] = await outbox_rows(db)
    assert set(row.headers) == {"traceparent"}
