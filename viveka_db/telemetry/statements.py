"""Statement telemetry for every engine viveka_db creates: CLIENT spans, durations, slow log.

The official SQLAlchemy instrumentation instruments the engines it is handed; viveka_db
creates a write engine, a read engine and one pair per named data source, so it instruments
each of them itself, where it creates them (:func:`instrument_engine`).

Spans follow the stable database semantic conventions. SQLAlchemy runs engine events in
the greenlet of the calling task with that task's context variables, so the active span at
``before_cursor_execute`` is the caller's transaction span and statement spans nest under it.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from viveka_db.dialects import adapter_for
from viveka_db.dialects.translate import error_code
from viveka_db.telemetry.pools import register_pool
from viveka_db.telemetry.providers import OTEL_AVAILABLE, active_tracer, instruments
from viveka_db.telemetry.sql_text import shape_of

if TYPE_CHECKING:
    from opentelemetry.trace import Span
    from sqlalchemy.engine import URL, Dialect, Engine, ExceptionContext
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["SLOW_LOGGER", "driver_statement", "instrument_engine", "pool_name"]

SLOW_LOGGER = "viveka_db.sql.slow"
slow_logger = logging.getLogger(SLOW_LOGGER)

_STATE = "_viveka_telemetry"
"""Attribute of the execution context holding ``(start, span)`` between the events."""

_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()
_listeners: weakref.WeakKeyDictionary[Engine, _StatementListener] = weakref.WeakKeyDictionary()
_State = tuple[float, "Span | None"]
"""A statement in flight: its start on the ``perf_counter`` clock and its span."""


def pool_name(data_source: str, role: str) -> str:
    """``db.client.connection.pool.name`` of an engine: ``default``, ``default.read``..."""
    return data_source if role == "primary" else f"{data_source}.{role}"


def _system_name(dialect: Dialect) -> str:
    return adapter_for(dialect).system_name(dialect)


def _server_attributes(url: URL) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {}
    if url.database and url.database != ":memory:":
        attributes["db.namespace"] = url.database
    if url.host:
        attributes["server.address"] = url.host
        if url.port:
            attributes["server.port"] = url.port
    return attributes


def instrument_engine(
    engine: AsyncEngine, *, data_source: str, role: str = "primary", slow_query_ms: int | None
) -> None:
    """Trace, time and (when slower than ``slow_query_ms``) log every statement of ``engine``.

    ``role`` is ``"primary"`` or ``"read"`` (a replica, or the read engine); it names the
    pool in ``db.client.connection.count``. Instrumenting an engine twice is a no-op. Without
    ``opentelemetry-api`` and without a slow-query threshold nothing is registered at all.
    """
    sync_engine = engine.sync_engine
    if sync_engine in _instrumented:
        return
    _instrumented.add(sync_engine)
    register_pool(pool_name(data_source, role), sync_engine)
    if not OTEL_AVAILABLE and slow_query_ms is None:
        return
    _StatementListener(sync_engine, data_source, role, slow_query_ms).listen(sync_engine)


class _StatementListener:
    """The engine events of one engine, with the attributes that never change computed once.

    Once, or rather twice for MySQL: whether the server is MariaDB is known only after the
    first connection, so the attributes are computed again when the dialect learns it.
    It keeps no reference to the engine (it is the value of a weak mapping keyed by it).
    """

    def __init__(
        self, engine: Engine, data_source: str, role: str, slow_query_ms: int | None
    ) -> None:
        self.dialect = engine.dialect
        self.url = engine.url
        self.data_source = data_source
        self.role = role
        self.slow_seconds = None if slow_query_ms is None else slow_query_ms / 1000
        self.dialect_name = engine.dialect.name
        self._describe()

    def _describe(self) -> None:
        self.mariadb = bool(getattr(self.dialect, "is_mariadb", False))
        self.system = _system_name(self.dialect)
        self.base: dict[str, str | int] = {
            "db.system.name": self.system,
            **_server_attributes(self.url),
        }
        self.span_base: dict[str, str | int] = {
            **self.base,
            "viveka_db.data_source": self.data_source,
            "viveka_db.engine.role": self.role,
        }

    def listen(self, engine: Engine) -> None:
        _listeners[engine] = self
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)
        event.listen(engine, "handle_error", self.failed)

    def before(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if context is None:
            return
        batch = None
        if many and isinstance(parameters, (list, tuple)):
            batch = len(parameters)  # pyright: ignore[reportUnknownArgumentType]
        setattr(context, _STATE, self.start(statement, batch))

    def after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        state: _State | None = getattr(context, _STATE, None)
        if state is not None:
            setattr(context, _STATE, None)
            self.finish(state, statement, None)

    def failed(self, exception_context: ExceptionContext) -> None:
        context = exception_context.execution_context
        state: _State | None = getattr(context, _STATE, None)
        if state is not None:
            setattr(context, _STATE, None)
            error = exception_context.original_exception or exception_context.sqlalchemy_exception
            self.finish(state, exception_context.statement or "", error)

    def start(self, statement: str, batch: int | None) -> _State:
        """Open the statement's span (when tracing) and start its clock."""
        if self.mariadb is not bool(getattr(self.dialect, "is_mariadb", False)):
            self._describe()
        span: Span | None = None
        tracer = active_tracer()
        if tracer is not None:
            from opentelemetry.trace import SpanKind

            shape = shape_of(statement, self.dialect_name)
            attributes: dict[str, Any] = {**self.span_base, "db.query.text": shape.text}
            operation = shape.operation
            if batch is not None and batch > 1:
                attributes["db.operation.batch.size"] = batch
                operation = f"BATCH {operation}" if operation else "BATCH"
            if operation:
                attributes["db.operation.name"] = operation
            if shape.collection:
                attributes["db.collection.name"] = shape.collection
            name = " ".join(part for part in (operation, shape.collection) if part) or self.system
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        return time.perf_counter(), span

    def finish(self, state: _State, statement: str, error: BaseException | None) -> None:
        """End the span, record the duration, log the statement if it was slow."""
        start, span = state
        duration = time.perf_counter() - start
        error_type = None if error is None else _error_type(error)
        if span is not None:
            if error is not None:
                from opentelemetry.trace import Status, StatusCode

                assert error_type is not None
                span.set_attribute("error.type", error_type)
                code = error_code(error)
                if code is not None:
                    span.set_attribute("db.response.status_code", code)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
        shape = shape_of(statement, self.dialect_name) if statement else None
        metrics = instruments()
        if metrics is not None:
            attributes: dict[str, str | int] = dict(self.base)
            if shape is not None and shape.operation:
                attributes["db.operation.name"] = shape.operation
            if shape is not None and shape.collection:
                attributes["db.collection.name"] = shape.collection
            if error_type is not None:
                attributes["error.type"] = error_type
            metrics.operation_duration.record(duration, attributes)
        slow = self.slow_seconds
        if slow is not None and duration >= slow and shape is not None:
            slow_logger.warning(
                "slow statement: %.1f ms (slow_query_ms = %d) on data source %r (%s): %s",
                duration * 1000,
                round(slow * 1000),
                self.data_source,
                self.system,
                shape.text,
            )


@contextmanager
def driver_statement(engine: Engine, statement: str) -> Generator[None]:
    """Trace and time a statement sent to the driver directly, bypassing SQLAlchemy's events
    (the bulk insert fast paths: one multi-row ``INSERT``, one ``COPY``); ``statement`` is
    its shape, with ``?`` for the values."""
    listener = _listeners.get(engine)
    if listener is None:
        yield
        return
    state = listener.start(statement, None)
    try:
        yield
    except BaseException as exc:
        listener.finish(state, statement, exc)
        raise
    listener.finish(state, statement, None)


def _error_type(error: BaseException) -> str:
    """``error.type``: the database's error code where known, else the exception's class."""
    return error_code(error) or type(error).__qualname__
