"""Issue 13: what the OpenTelemetry instrumentation costs per call, with and without an SDK.

Three kinds of call, each in three telemetry states, interleaved in one process:

* ``@transactional`` joining a transaction the task already owns (the hot path: no span);
* ``@transactional`` opening a transaction whose work never touches the database (the span
  of a boundary, nothing else: a cache hit, say);
* ``@transactional`` running one ``SELECT 1`` on in-memory SQLite (boundary + statement);
* a ``@cacheable`` hit on the in-process cache, outside a transaction (the request counter);
* the statement instrumentation alone (what the engine events run around one statement),
  since the SQLite arm's thread hops make its CPU time vary by more than the overhead.

States: "no API" (``opentelemetry-api`` absent: simulated, and the SQLite arms use a data
source created in that state, so with no engine listeners); "no SDK" (the API installed, no
SDK provider set: the default for a user who has not configured OpenTelemetry); "SDK" (SDK
tracer and meter providers, a ``SimpleSpanProcessor`` with an exporter that drops every
span, an in-memory metric reader). CPU time per call; overhead is against the "no API" arm.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import text
from sqlalchemy.engine import Engine

from harness import ArmResult, run_interleaved
from viveka_db import DatabaseSessionFactory, cacheable, current_session, transactional
from viveka_db.context.db_context import scope_var, set_scope
from viveka_db.telemetry import providers, set_providers, statements
from viveka_db.transaction.scope import TransactionScope

BATCH = 500
OPS = 10  # batches per arm and round
ROUNDS = 7


class DropSpans(SpanExporter):
    """The no-op exporter: the SDK does all its work, the spans go nowhere."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(DropSpans()))
meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
OTEL_INSTALLED = providers.OTEL_AVAILABLE


def no_api() -> None:
    providers.OTEL_AVAILABLE = False
    providers._global_tracer_provider = None
    set_providers()


def no_sdk() -> None:
    providers.OTEL_AVAILABLE = OTEL_INSTALLED
    set_providers()


def sdk() -> None:
    providers.OTEL_AVAILABLE = OTEL_INSTALLED
    set_providers(tracer_provider, meter_provider)


STATES = {"no API": no_api, "no SDK": no_sdk, "SDK + no-op exporter": sdk}


@transactional
async def joined() -> int:
    return 1


@transactional
async def boundary() -> int:
    return 1


@transactional
async def select_one() -> int:
    return int((await current_session().execute(text("SELECT 1"))).scalar_one())


async def noop() -> int:
    return 1


@cacheable("bench_hit")
async def cached() -> int:
    return 1


@transactional(data_source="bench_plain")
async def select_one_plain() -> int:
    result = await current_session("bench_plain").execute(text("SELECT 1"))
    return int(result.scalar_one())


def arm(state: Callable[[], None], call: Callable[[], Awaitable[int]], *, join: bool = False):  # type: ignore[no-untyped-def]
    async def batch() -> None:
        state()
        token = set_scope(TransactionScope(None, owner=asyncio.current_task())) if join else None
        try:
            for _ in range(BATCH):
                await call()
        finally:
            if token is not None:
                scope_var().reset(token)

    return batch


def statement_events(engine: Engine) -> Callable[[], Awaitable[int]]:
    listener = statements._listeners[engine]

    async def events() -> int:
        listener.finish(listener.start("SELECT 1", None), "SELECT 1", None)
        return 1

    return events


def us_per_call(result: ArmResult) -> list[float]:
    return [1e6 / (rate * BATCH) for rate in result.samples]


async def main() -> None:
    url = {"database": {"url": "sqlite+aiosqlite:///:memory:"}}
    no_api()
    DatabaseSessionFactory(url, data_source="bench_plain")  # no engine listeners
    no_sdk()
    traced = DatabaseSessionFactory(url)
    await cached()  # the entry every later call hits
    kinds = {
        "join": (joined, joined, True),
        "new transaction, no I/O": (boundary, boundary, False),
        "new transaction + SELECT 1 (SQLite)": (select_one_plain, select_one, False),
        "@cacheable hit (in-process cache)": (cached, cached, False),
        "statement events alone": (noop, statement_events(traced.engine.sync_engine), False),
    }
    arms = {}
    for kind, (plain, traced, join) in kinds.items():
        for state_name, state in STATES.items():
            call = plain if state_name == "no API" else traced
            arms[f"{kind} | {state_name}"] = arm(state, call, join=join)
    try:
        results = await run_interleaved(arms, ops=OPS, rounds=ROUNDS, clock=time.process_time)
    finally:
        no_sdk()
        await DatabaseSessionFactory.close_all()
    by_name = {r.name: statistics.median(us_per_call(r)) for r in results}
    print("## Issue 13: OpenTelemetry overhead per @transactional call\n")
    print(f"### {BATCH:,} calls per batch, {ROUNDS} interleaved rounds, CPU time per call\n")
    print("| call | telemetry | median µs/call | min–max | overhead µs | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        kind, state_name = r.name.split(" | ")
        samples = us_per_call(r)
        median = statistics.median(samples)
        base = by_name[f"{kind} | no API"]
        overhead = "—" if state_name == "no API" else f"{median - base:+.2f}"
        print(
            f"| {kind} | {state_name} | {median:.2f} | {min(samples):.2f}–{max(samples):.2f} "
            f"| {overhead} | {median / base:.2f}x |"
        )
    print()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
