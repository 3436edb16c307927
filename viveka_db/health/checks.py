"""``check_health()``: can this process reach each of its databases and its cache, and how fast.

Each initialised data source is checked on its primary and on every replica it reads from
(one ``SELECT 1`` each, through the engine's own pool, so a pool that cannot hand out a
connection in time counts as down), and the installed cache backend is pinged; all checks
run concurrently, each bounded by ``timeout``: a check answers "timed out" after at most
``timeout`` plus :data:`~viveka_db.session.probe.CANCEL_GRACE` (0.1 s), even when a server
stops answering mid-statement (its cleanup then finishes in the background). Reports
carry masked URLs and exception class names only: nothing a health endpoint must not
show (passwords, driver messages).

A cache outage leaves the service working (the cache fails open), so by default it makes
the report ``degraded``, not ``down``; ``require_cache=True`` counts it as down. So does a
replica outage: read-only work falls back to the primary (``degraded``); only an unreachable
primary makes the report ``down``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from viveka_db.cache.current import get_cache
from viveka_db.config.urls import mask_url
from viveka_db.dialects.connection import driver_error_name
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.session.probe import probe_engine, within
from viveka_db.telemetry.providers import untraced

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["ComponentHealth", "HealthReport", "check_health", "database_targets"]

Status = Literal["up", "degraded", "down"]


@dataclass(frozen=True)
class ComponentHealth:
    """The state of one database engine or of the cache."""

    name: str
    """The data source (``default``...) or ``cache``."""
    kind: Literal["database", "cache"]
    role: str
    """``primary`` or ``read`` for a database; the backend kind for the cache."""
    target: str
    """Where it is, password masked."""
    up: bool
    latency_ms: float | None = None
    """The round trip of ``SELECT 1`` / ``PING``; ``None`` when down or in-process."""
    error: str | None = None
    """What went wrong: an exception class name or ``timed out``, never a driver message."""
    required: bool = True
    """Whether the service is down when this component is."""
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    """The exception itself, for callers that may show more (the CLI); never serialised."""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "target": self.target,
            "status": "up" if self.up else "down",
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
        }
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class HealthReport:
    """Every component's state and the verdict: ``up``, ``degraded`` or ``down``."""

    components: tuple[ComponentHealth, ...]

    @property
    def status(self) -> Status:
        components = self.components
        no_database = all(c.kind != "database" for c in components)
        if no_database or any(c.required and not c.up for c in components):
            return "down"
        return "up" if all(c.up for c in self.components) else "degraded"

    @property
    def healthy(self) -> bool:
        """Whether the service can do its work (``up`` or ``degraded``)."""
        return self.status != "down"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checks": [c.as_dict() for c in self.components]}


def database_targets(factory: DatabaseSessionFactory) -> list[tuple[str, AsyncEngine, URL]]:
    """``(role, engine, url)`` of every engine of ``factory`` worth checking.

    The primary, and each replica (``read_urls``, ``read_url``) as ``replica 1``,
    ``replica 2``...; without replicas the read engine is a second pool on the primary,
    which the primary's check covers.
    """
    return factory.targets()


async def check_health(
    *,
    timeout: float = 2.0,  # noqa: ASYNC109 - a bound for each check, not for the whole call
    data_sources: Iterable[str] | None = None,
    require_cache: bool = False,
) -> HealthReport:
    """Check every initialised data source (or those named) and the cache, concurrently.

    With no data source initialised the report is ``down``: such a process cannot serve.
    """
    factories = DatabaseSessionFactory.instances()
    names = list(factories) if data_sources is None else list(data_sources)
    checks: list[Awaitable[ComponentHealth]] = []
    for name in names:
        factory = factories.get(name)
        if factory is None:
            checks.append(_not_initialised(name))
            continue
        for role, engine, url in database_targets(factory):
            checks.append(_check_database(name, role, engine, url, seconds=timeout))
    checks.append(_check_cache(require_cache, seconds=timeout))
    with untraced():  # the probes are copied into the gathered tasks' contexts
        return HealthReport(tuple(await asyncio.gather(*checks)))


async def _not_initialised(name: str) -> ComponentHealth:
    return ComponentHealth(name, "database", "primary", "", False, error="not initialised")


async def _check_database(
    name: str, role: str, engine: AsyncEngine, url: URL, *, seconds: float
) -> ComponentHealth:
    async def probe() -> float:
        return await probe_engine(engine, seconds)

    required = role == "primary"  # reads fall back from a replica to the primary
    return await _timed(name, "database", role, mask_url(url), seconds, required, probe)


async def _check_cache(required: bool, *, seconds: float) -> ComponentHealth:
    backend = get_cache()
    kind = type(backend).__name__
    if not backend.remote:
        return ComponentHealth("cache", "cache", kind, "in-process", True, required=required)

    async def ping() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await within(seconds, backend.ping)
        return loop.time() - started

    return await _timed("cache", "cache", kind, repr(backend), seconds, required, ping)


async def _timed(
    name: str,
    kind: Literal["database", "cache"],
    role: str,
    target: str,
    seconds: float,
    required: bool,
    probe: Callable[[], Awaitable[float]],
) -> ComponentHealth:
    """Run ``probe`` (bounded by ``seconds`` itself); the seconds it returns are the latency."""
    try:
        millis = await probe() * 1000
    except TimeoutError as exc:
        error = f"timed out after {seconds:g}s"
        return ComponentHealth(name, kind, role, target, False, None, error, required, exc)
    except Exception as exc:
        error = driver_error_name(exc)
        return ComponentHealth(name, kind, role, target, False, None, error, required, exc)
    return ComponentHealth(name, kind, role, target, True, millis, None, required)
