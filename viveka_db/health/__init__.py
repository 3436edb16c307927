"""Health checks: ``check_health()`` and the ASGI ``health_endpoint()``."""

from viveka_db.health.checks import ComponentHealth, HealthReport, check_health
from viveka_db.health.endpoint import health_endpoint

__all__ = ["ComponentHealth", "HealthReport", "check_health", "health_endpoint"]
