"""OpenTelemetry traces and metrics, through ``opentelemetry-api`` only (the ``otel`` extra).

Nothing here needs configuring: install the SDK and set the global providers (or call
:func:`set_providers`) and viveka_db's spans and metrics appear. ``docs/observability.md``
describes each span and metric. The instrumentation itself lives in the submodules, which
are internal.
"""

from viveka_db.telemetry.providers import set_providers

__all__ = ["set_providers"]
