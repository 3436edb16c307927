"""Health checks: ``check_health()`` and the ASGI ``health_endpoint()``."""

from viveka_db.health.checks import ComponentHealth, HealthReport, check_health, database_targets
from viveka_db.health.endpoint import health_endpoint

__all__ = ["ComponentHealth", "HealthReport", "check_health", "database_targets", "health_endpoint"]
