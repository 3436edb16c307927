"""What the transaction, HTTP and memory benchmarks share: URLs, the bench table, helpers.

Server URLs come from ``VIVEKA_BENCH_POSTGRES_URL`` / ``VIVEKA_BENCH_MARIADB_URL`` (defaults:
the loopback services). Every benchmark uses its own ``bench_`` tables, creates them and
drops them again. A backend whose server is down is skipped with a note, not an error.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import DbRepo, VivekaDbBase, entity, table

PG_URL = os.environ.get(
    "VIVEKA_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "VIVEKA_BENCH_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"
)
POOL_SIZE = 10
"""Every arm of every benchmark gets this many pooled connections (and no overflow)."""
ROWS = 1000


@entity
@table("bench_users")
class BenchUser(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(128))


class BenchUserRepo(DbRepo[BenchUser]):
    pass


def seed_rows() -> list[BenchUser]:
    return [
        BenchUser(id=i, name=f"user {i}", email=f"user{i}@example.com") for i in range(1, ROWS + 1)
    ]


def sqlite_url() -> str:
    path = Path(tempfile.mkdtemp(prefix="viveka_bench_")) / "bench.db"
    return f"sqlite+aiosqlite:///{path}"


def server_up(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 0), timeout=1):
            return True
    except OSError:
        return False


def db_config(url: str) -> dict[str, dict[str, object]]:
    """The viveka_db configuration of a benchmark data source (same pool as every arm)."""
    return {"database": {"url": url, **engine_options()}, "cache": {"enabled": False}}


def engine_options() -> dict[str, object]:
    """The same pool for a hand-written SQLAlchemy engine."""
    return {"pool_size": POOL_SIZE, "max_overflow": 0}


class IdCycle:
    """Keys 1..size (default ``ROWS``) in turn: every arm reads the same rows in the same
    order."""

    def __init__(self, size: int = ROWS) -> None:
        self.size, self.next = size, 0

    def __call__(self) -> int:
        self.next = self.next % self.size + 1
        return self.next


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def raw_asyncpg_pool(url: Any, size: int) -> Any:
    """A plain asyncpg pool of ``size`` connections to ``url`` (a parsed SQLAlchemy URL):
    the raw-driver reference arm of the benchmarks."""
    import asyncpg

    return await asyncpg.create_pool(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
        min_size=size,
        max_size=size,
    )
