"""The span and metrics of one transaction boundary.

The code that owns a transaction's outermost boundary opens :func:`transaction_span` around
it, reports how it ended with :meth:`TransactionSpan.set_outcome` (and the re-runs of a
retried call with :meth:`TransactionSpan.set_retries`), and closes it. While it is open the
span is the current span, so the statements and cache calls of the transaction nest under it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

from viveka_db.telemetry.providers import active_tracer, instruments

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span

__all__ = ["Outcome", "TransactionSpan", "request_span", "transaction_span"]

Outcome = Literal["committed", "rolled_back", "rollback_only"]
"""``committed``; ``rolled_back`` (an error, an error status, or a read-only end);
``rollback_only``: an inner call failed, the caller swallowed the error, so it rolled back."""

_OUTCOMES = ("committed", "rolled_back", "rollback_only")


class TransactionSpan:
    """An INTERNAL span around one transaction boundary; a no-op while nobody is tracing.

    Used as a context manager (``with transaction_span(...) as span:``) or, where a
    ``with`` block does not fit the code, with :meth:`start` and :meth:`finish`.
    Without an explicit outcome, leaving with an exception counts as ``rolled_back``.
    Attributes are built only when a span is really recorded.
    """

    __slots__ = (
        "_data_source",
        "_name",
        "_outcome",
        "_propagation",
        "_read_only",
        "_retries",
        "_scope",
        "_span",
        "_token",
    )

    def __init__(
        self,
        name: str,
        *,
        propagation: str,
        read_only: bool,
        data_source: str,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        self._name = name
        self._propagation = propagation
        self._read_only = read_only
        self._data_source = data_source
        self._scope = scope
        """The ASGI scope of a request: its route, known once routed, renames the span."""
        self._outcome: Outcome | None = None
        self._retries = 0
        self._span: Span | None = None
        self._token: Token[Context] | None = None

    def start(self) -> TransactionSpan:
        tracer = active_tracer()
        if tracer is not None:
            from opentelemetry import context, trace

            attributes: dict[str, Any] = {
                "viveka_db.transaction.propagation": self._propagation,
                "viveka_db.transaction.read_only": self._read_only,
                "viveka_db.data_source": self._data_source,
            }
            if self._scope is not None:
                attributes["http.request.method"] = self._name
            span = tracer.start_span(self._name, attributes=attributes)
            self._span = span
            self._token = context.attach(trace.set_span_in_context(span))
        return self

    def set_outcome(self, outcome: Outcome) -> None:
        """How the transaction ended; the last call wins."""
        if outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {_OUTCOMES}, got {outcome!r}")
        self._outcome = outcome

    def set_retries(self, retries: int) -> None:
        """How many times the work was re-run after a retryable error (0: ran once)."""
        metrics = instruments()
        if metrics is not None and retries > self._retries:
            source = {"viveka_db.data_source": self._data_source}
            metrics.retries.add(retries - self._retries, source)
        self._retries = retries

    def finish(self, error: BaseException | None = None) -> None:
        """End the span; ``error`` is the exception leaving the boundary, if any."""
        outcome = self._outcome or ("rolled_back" if error is not None else "committed")
        metrics = instruments()
        if metrics is not None:
            metrics.transactions.add(1, _outcome_attributes(self._data_source, outcome))
        span = self._span
        if span is None:
            return
        self._span = None
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        attributes: dict[str, Any] = {
            "viveka_db.transaction.outcome": outcome,
            "viveka_db.transaction.retries": self._retries,
        }
        if self._scope is not None:
            route = _route_of(self._scope)
            if route:
                span.update_name(f"{self._name} {route}")
                attributes["http.route"] = route
        if error is not None:
            attributes["error.type"] = type(error).__qualname__
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        elif outcome == "rollback_only":
            attributes["error.type"] = "rollback_only"
            span.set_status(Status(StatusCode.ERROR, "rolled back: marked rollback-only"))
        span.set_attributes(attributes)
        if self._token is not None:
            context.detach(self._token)
            self._token = None
        span.end()

    def __enter__(self) -> TransactionSpan:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish(exc)


def transaction_span(
    name: str, *, propagation: str, read_only: bool, data_source: str
) -> TransactionSpan:
    """The span of one transaction boundary named ``name`` (the function, or the request)."""
    return TransactionSpan(
        name or "transaction",
        propagation=propagation,
        read_only=read_only,
        data_source=data_source,
    )


def request_span(scope: Mapping[str, Any], *, data_source: str, read_only: bool) -> TransactionSpan:
    """The span of an HTTP request's transaction (``DbMiddleware``).

    Named ``"GET"`` and, once the app's router has matched a route, ``"GET /items/{id}"``
    (the route template, never the raw path, so names stay few).
    """
    return TransactionSpan(
        str(scope.get("method", "HTTP")),
        propagation="REQUIRED",
        read_only=read_only,
        data_source=data_source,
        scope=scope,
    )


_outcome_cache: dict[tuple[str, str], dict[str, str]] = {}


def _outcome_attributes(data_source: str, outcome: str) -> dict[str, str]:
    """The (few, reused) attribute sets of ``viveka_db.transactions``."""
    key = (data_source, outcome)
    attributes = _outcome_cache.get(key)
    if attributes is None:
        attributes = _outcome_cache[key] = {
            "viveka_db.data_source": data_source,
            "viveka_db.transaction.outcome": outcome,
        }
    return attributes


def _route_of(scope: Mapping[str, Any]) -> str | None:
    """The matched route's template (Starlette and FastAPI put the route in the scope)."""
    route = scope.get("route")
    if route is None:
        route = _matched_route(scope)
    path = getattr(route, "path", None) if route is not None else None
    return path if isinstance(path, str) else None


def _matched_route(scope: Mapping[str, Any]) -> object | None:
    """The route of ``scope["router"]`` that fully matches the request, asked again.

    FastAPI's routes record themselves in the scope on every release; plain Starlette
    routes do only since Starlette 1.7, so on older releases the router is asked
    (through its routes' ``matches``, without importing Starlette: it is an optional extra).
    """
    routes: object = getattr(scope.get("router"), "routes", None)
    if not isinstance(routes, list):
        return None
    for route in cast("list[object]", routes):
        matches: Callable[[dict[str, Any]], tuple[object, object]] | None
        matches = getattr(route, "matches", None)
        if matches is not None and getattr(matches(dict(scope))[0], "name", None) == "FULL":
            return route
    return None
