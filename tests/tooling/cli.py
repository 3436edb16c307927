"""Running ``viveka-db`` as a subprocess, the way users run it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Generator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests import backends

ROOT = Path(__file__).resolve().parents[2]

SQLITE_AND_POSTGRESQL = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]
"""The ``backend`` parameters of tooling tests that run on a file and a server database."""


def cli_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no inherited VIVEKA_* settings, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIVEKA_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["NO_COLOR"] = "1"
    if database_url is not None:
        env["VIVEKA_DATABASE__URL"] = database_url
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str], check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m viveka_db.cli ARGS`` in ``cwd``; fails the test with the output if ``check``."""
    result = subprocess.run(
        [sys.executable, "-m", "viveka_db.cli", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"viveka-db {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def own_database(
    backend: str, backend_url: str, directory: Path, suffix: str
) -> Generator[str, None, None]:
    """The URL of an empty database of the caller's own on ``backend``, dropped afterwards.

    Tooling tests that autogenerate or migrate need one: autogenerate compares the *whole*
    database with the entities and would see the other test modules' tables.
    """
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'{suffix}.db'}"
        return
    admin = backends.SERVER_URLS[backend]
    name = f"{backends.private_database_name()}_{suffix}"
    quoted = f'"{name}"' if backend == "postgresql" else f"`{name}`"
    drop = f"DROP DATABASE IF EXISTS {quoted}" + (
        " WITH (FORCE)" if backend == "postgresql" else ""
    )
    asyncio.run(_admin(admin, drop, f"CREATE DATABASE {quoted}"))
    try:
        yield make_url(backend_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(admin, drop))
