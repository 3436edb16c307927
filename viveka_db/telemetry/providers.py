"""Where telemetry goes: OpenTelemetry's global providers, or ones passed to :func:`set_providers`.

viveka_db depends on ``opentelemetry-api`` only (the ``otel`` extra), and only optionally.
Without the package, or while the application has not installed an SDK, :func:`active_tracer`
returns ``None`` and every instrumented path skips its telemetry after one check, so the
cost of instrumentation nobody reads stays near zero. Metrics use the API's own instruments,
which are cheap no-ops until an SDK meter provider is installed. The API is imported on first
use, not with ``viveka_db`` (it loads its context implementation through entry points).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.util import find_spec
from typing import TYPE_CHECKING

from viveka_db._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

    from viveka_db.telemetry.instruments import Instruments

__all__ = [
    "OTEL_AVAILABLE",
    "SCOPE_NAME",
    "active_tracer",
    "instruments",
    "set_providers",
    "untraced",
]

SCOPE_NAME = "viveka_db"
"""The instrumentation scope name of every span and metric viveka_db emits."""

OTEL_AVAILABLE = (
    find_spec("opentelemetry") is not None and find_spec("opentelemetry.trace") is not None
)
"""Whether ``opentelemetry-api`` is importable (``pip install "viveka-db[otel]"``)."""

_explicit_tracer_provider: TracerProvider | None = None
_explicit_meter_provider: MeterProvider | None = None
_global_tracer_provider: Callable[[], TracerProvider] | None = None
"""``opentelemetry.trace.get_tracer_provider`` once the API is imported."""
_no_op_providers: tuple[type[TracerProvider], ...] = ()
_seen_provider: object = None
"""The tracer provider :data:`_tracer` was resolved from (the global one may be set late)."""
_tracer: Tracer | None = None
_instruments: Instruments | None = None
_untraced: ContextVar[bool] = ContextVar("viveka_db_untraced", default=False)
"""Set while the current task does work that must not be traced (health probes)."""


@contextmanager
def untraced() -> Generator[None]:
    """Record no spans for the work inside (a load balancer's health probes every few
    seconds would otherwise fill the traces); metrics are still recorded."""
    token = _untraced.set(True)
    try:
        yield
    finally:
        _untraced.reset(token)


def set_providers(
    tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> None:
    """Send viveka_db's spans and metrics to these providers instead of the global ones.

    Like the ``tracer_provider=`` / ``meter_provider=`` arguments of OpenTelemetry's own
    instrumentations; ``None`` (the default) means the global providers, set with
    ``opentelemetry.trace.set_tracer_provider`` and ``opentelemetry.metrics.set_meter_provider``.
    Useful in tests, where the global providers can be set only once per process.
    """
    global _explicit_tracer_provider, _explicit_meter_provider, _seen_provider, _tracer
    global _instruments
    _explicit_tracer_provider, _explicit_meter_provider = tracer_provider, meter_provider
    _seen_provider = _tracer = _instruments = None


def _load_trace_api() -> Callable[[], TracerProvider]:
    global _global_tracer_provider, _no_op_providers
    from opentelemetry import trace

    _no_op_providers = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    _global_tracer_provider = trace.get_tracer_provider
    return trace.get_tracer_provider


def active_tracer() -> Tracer | None:
    """viveka_db's tracer, or ``None`` when spans would go nowhere (no API, or no SDK)."""
    global _seen_provider, _tracer
    get_global = _global_tracer_provider
    if get_global is None:
        if not OTEL_AVAILABLE:
            return None
        get_global = _load_trace_api()
    if _untraced.get():
        return None
    provider = _explicit_tracer_provider or get_global()
    if provider is not _seen_provider:
        _seen_provider = provider
        if isinstance(provider, _no_op_providers):
            _tracer = None
        else:
            _tracer = provider.get_tracer(SCOPE_NAME, __version__)
    return _tracer


def instruments() -> Instruments | None:
    """viveka_db's metric instruments (``None`` without the API), created on first use."""
    global _instruments
    if _instruments is None and OTEL_AVAILABLE:
        from opentelemetry import metrics

        from viveka_db.telemetry.instruments import Instruments

        provider = _explicit_meter_provider or metrics.get_meter_provider()
        _instruments = Instruments(provider.get_meter(SCOPE_NAME, __version__))
    return _instruments
