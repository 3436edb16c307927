"""Run the RealWorld project's Postman collection against Conduit with newman.

    python examples/conduit/run_newman.py postgresql sqlite mariadb

For each database: create a fresh one (PostgreSQL and MariaDB on loopback, SQLite in a
temporary file), create the tables with the example's migrations (``viveka-db db upgrade``),
start the app with uvicorn on a free loopback port, run newman with a fresh user, stop the
app and drop the database. newman is installed with npm into ``build/newman`` on the first
run. The collection comes from ``$REALWORLD_DIR`` (default ``../shared/realworld`` beside
the repository). Exits non-zero when any assertion failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
REALWORLD = Path(os.environ.get("REALWORLD_DIR", ROOT.parent / "shared" / "realworld"))
NEWMAN_DIR = ROOT / "build" / "newman"
NEWMAN = NEWMAN_DIR / "node_modules" / ".bin" / "newman"
SERVERS = {  # where the fresh database is created: an admin URL per server
    "postgresql": os.environ.get(
        "CONDUIT_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get("CONDUIT_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
}


async def _admin(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def fresh_database(kind: str) -> Generator[str]:
    """The URL of an empty database of ``kind``, dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{folder}/conduit.db"
        return
    admin, name = SERVERS[kind], f"conduit_{os.getpid()}"
    quoted = f'"{name}"' if kind == "postgresql" else f"`{name}`"
    asyncio.run(_admin(admin, f"DROP DATABASE IF EXISTS {quoted}"))
    asyncio.run(_admin(admin, f"CREATE DATABASE {quoted}"))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if kind == "postgresql" else ""
        asyncio.run(_admin(admin, f"DROP DATABASE IF EXISTS {quoted}{force}"))


def free_port() -> int:
    """``$CONDUIT_PORT`` when set (a port assigned to this run), else a free one."""
    if os.environ.get("CONDUIT_PORT"):
        return int(os.environ["CONDUIT_PORT"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(database_url: str, port: int) -> Generator[None]:
    """Conduit under uvicorn on ``127.0.0.1:port`` until the block ends."""
    env = {k: v for k, v in os.environ.items() if k != "VIVEKA_CONFIG"}
    env |= {"VIVEKA_DATABASE__URL": database_url, "VIVEKA_CACHE__URL": "memory://"}
    migrations = ["db", "upgrade", "-d", "examples/conduit/migrations"]
    subprocess.run(
        [sys.executable, "-m", "viveka_db.cli", *migrations], cwd=ROOT, env=env, check=True
    )
    command = [sys.executable, "-m", "uvicorn", "examples.conduit.app:app"]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tags", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("conduit did not start") from None
                time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_collection(kind: str) -> tuple[int, int]:
    """Run the collection against a fresh ``kind`` database: (assertions, failed)."""
    report = NEWMAN_DIR / f"report-{kind}.json"
    report.unlink(missing_ok=True)
    user = f"u{os.getpid()}{int(time.time())}"
    port = free_port()
    with fresh_database(kind) as url, serving(url, port):
        code = subprocess.call(
            [
                str(NEWMAN),
                "run",
                str(REALWORLD / "Conduit.postman_collection.json"),
                "--global-var", f"APIURL=http://127.0.0.1:{port}/api",
                "--global-var", f"USERNAME={user}",
                "--global-var", f"EMAIL={user}@mail.com",
                "--global-var", "PASSWORD=password",
                "--reporters", "cli,json",
                "--reporter-cli-no-success-assertions",  # failures and the summary table
                "--reporter-cli-no-console",  # the collection's deprecation notes
                "--reporter-json-export", str(report),
            ]
        )  # fmt: skip
    if not report.exists():
        raise RuntimeError(f"newman exited with {code} and wrote no report")
    stats = json.loads(report.read_text())["run"]["stats"]["assertions"]
    total, failed = int(stats["total"]), int(stats["failed"])
    return total, failed + (1 if code and not failed else 0)


def main(kinds: list[str]) -> int:
    collection = REALWORLD / "Conduit.postman_collection.json"
    if not collection.exists():
        print(f"no RealWorld collection at {collection}: set REALWORLD_DIR", file=sys.stderr)
        return 2
    if not NEWMAN.exists():
        print("==> installing newman into build/newman", flush=True)
        NEWMAN_DIR.mkdir(parents=True, exist_ok=True)
        npm = ["npm", "install", "--prefix", str(NEWMAN_DIR), "--no-audit", "--no-fund"]
        subprocess.run([*npm, "newman"], check=True)
    results = {kind: run_collection(kind) for kind in kinds or ["postgresql"]}
    for kind, (total, failed) in results.items():
        print(f"conduit on {kind}: {total} newman assertions, {failed} failing")
    return 1 if any(failed for _, failed in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
