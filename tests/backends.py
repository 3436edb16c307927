"""Which databases the suite runs on, and a private database per test run.

``VIVEKA_TEST_BACKENDS`` (comma list of ``sqlite``, ``postgresql``, ``mariadb``; default all)
picks backends. PostgreSQL and MariaDB URLs come from ``VIVEKA_TEST_POSTGRES_URL`` /
``VIVEKA_TEST_MARIADB_URL`` (defaults: the loopback services). Each run creates its own
database (``viveka_test_<pid>``) so concurrent runs never see each other's tables.
With ``CI=true`` a configured server that is down fails the run; elsewhere its tests skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ALL_BACKENDS = ("sqlite", "postgresql", "mariadb")

SERVER_URLS = {
    "postgresql": os.environ.get(
        "VIVEKA_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get(
        "VIVEKA_TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"
    ),
}


def postgres_driver() -> str:
    """The driver the PostgreSQL tests run on (``asyncpg``, or ``psycopg`` in its CI run)."""
    return make_url(SERVER_URLS["postgresql"]).get_driver_name()


REDIS_URL = os.environ.get("VIVEKA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def selected_backends() -> list[str]:
    raw = os.environ.get("VIVEKA_TEST_BACKENDS", "") or os.environ.get("TEST_DB_BACKEND", "")
    if not raw or raw in ("all", "both"):
        return list(ALL_BACKENDS)
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    names = [
        "postgresql" if n in ("postgres", "pg") else "mariadb" if n == "mysql" else n for n in names
    ]
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise ValueError(
            f"VIVEKA_TEST_BACKENDS names unknown backends {sorted(unknown)}; valid: {ALL_BACKENDS}"
        )
    return names


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class BackendStatus:
    urls: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    redis_available: bool = False


def _server_reachable(url: str) -> bool:
    parsed = make_url(url)
    return port_open(parsed.host or "127.0.0.1", parsed.port or 0)


async def _create_database(admin_url: str, name: str) -> str:
    parsed = make_url(admin_url)
    is_pg = parsed.get_backend_name() == "postgresql"
    engine = create_async_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            if is_pg:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
                await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    finally:
        await engine.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def _drop_database(admin_url: str, name: str) -> None:
    parsed = make_url(admin_url)
    is_pg = parsed.get_backend_name() == "postgresql"
    engine = create_async_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            if is_pg:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        await engine.dispose()


def private_database_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"viveka_test_{os.getpid()}{('_' + worker) if worker else ''}"


def prepare(sqlite_path: str) -> BackendStatus:
    """Create this run's databases; record what is unavailable and why."""
    status = BackendStatus()
    name = private_database_name()
    for backend in selected_backends():
        if backend == "sqlite":
            status.urls["sqlite"] = f"sqlite+aiosqlite:///{sqlite_path}"
            continue
        admin = SERVER_URLS[backend]
        if not _server_reachable(admin):
            status.unavailable[backend] = (
                f"{backend} is not reachable at {make_url(admin).render_as_string()}"
            )
            continue
        try:
            status.urls[backend] = asyncio.run(_create_database(admin, name))
        except Exception as exc:  # report, do not crash collection
            status.unavailable[backend] = f"{backend}: could not create test database: {exc}"
    redis = make_url(REDIS_URL.replace("redis://", "redis+x://", 1))
    status.redis_available = port_open(redis.host or "127.0.0.1", redis.port or 6379)
    return status


def teardown(status: BackendStatus) -> None:
    name = private_database_name()
    for backend in status.urls:
        if backend != "sqlite":
            with contextlib.suppress(Exception):  # best effort: the next run drops it anyway
                asyncio.run(_drop_database(SERVER_URLS[backend], name))
