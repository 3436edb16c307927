"""Cache telemetry: a CLIENT span per Redis command, and ``@cacheable`` lookups by result.

A cache span carries ``db.system.name = "redis"`` and the command as ``db.operation.name``
(never keys or values); a lookup's span also says whether it was a hit or a miss.
``record_cache_request`` is on the hit path, so without an SDK it costs a no-op call.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from viveka_db.telemetry.providers import active_tracer, instruments

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["CacheResult", "CacheSpan", "cache_span", "record_cache_request", "redis_attributes"]

CacheResult = Literal["hit", "miss", "error"]

_RESULTS: dict[str, dict[str, str]] = {
    result: {"viveka_db.cache.result": result} for result in ("hit", "miss", "error")
}


def record_cache_request(result: CacheResult) -> None:
    """Count one ``@cacheable`` lookup in ``viveka_db.cache.requests``."""
    metrics = instruments()
    if metrics is not None:
        metrics.cache_requests.add(1, _RESULTS[result])


class CacheSpan:
    """The span of one cache command; every method is a no-op while nobody is tracing."""

    __slots__ = ("_span",)

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def set_result(self, result: CacheResult) -> None:
        if self._span is not None:
            self._span.set_attribute("viveka_db.cache.result", result)

    def fail(self, error: BaseException) -> None:
        """The command failed (the cache fails open, so the error never leaves it)."""
        span = self._span
        if span is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("error.type", type(error).__qualname__)
            span.set_attribute("viveka_db.cache.result", "error")
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))

    def end(self) -> None:
        if self._span is not None:
            self._span.end()

    def __enter__(self) -> CacheSpan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.fail(exc)
        self.end()


_NO_SPAN = CacheSpan(None)


def cache_span(operation: str, attributes: dict[str, Any]) -> CacheSpan:
    """A span for the cache command ``operation`` (``MGET``, ``EVALSHA``...) on a server.

    ``attributes`` describe the server (``db.system.name``, ``server.address``...); see
    :func:`redis_attributes`.
    """
    tracer = active_tracer()
    if tracer is None:
        return _NO_SPAN
    from opentelemetry.trace import SpanKind

    span = tracer.start_span(
        operation,
        kind=SpanKind.CLIENT,
        attributes={**attributes, "db.operation.name": operation},
    )
    return CacheSpan(span)


def redis_attributes(connection_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The server attributes of a redis-py client, from its pool's ``connection_kwargs``."""
    attributes: dict[str, Any] = {"db.system.name": "redis"}
    host, port, path = (connection_kwargs.get(k) for k in ("host", "port", "path"))
    if host:
        attributes["server.address"] = str(host)
        if port:
            attributes["server.port"] = int(port)
    elif path:
        attributes["server.address"] = str(path)
    db = connection_kwargs.get("db")
    if db is not None:
        attributes["db.namespace"] = str(db)
    return attributes
