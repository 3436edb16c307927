"""``import viveka_db`` stays light: dialects and optional extras load only when used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.mysql",
    "sqlalchemy.dialects.sqlite",
    "asyncpg",
    "aiomysql",
    "asyncmy",
    "redis",
    "alembic",
    "typer",
    "rich",
    "fastapi",
    "starlette",
)


def test_import_does_not_load_dialects_or_extras() -> None:
    code = (
        "import sys, viveka_db\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        "from viveka_db.config.settings import DatabaseSettings\n"
        "print(DatabaseSettings.__pydantic_complete__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == ""  # none of them imported
    assert out[1] == "False"  # settings models are built on first use, not at import


def test_lazy_pieces_still_work_after_import() -> None:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    from viveka_db.base.types import UTCDateTime
    from viveka_db.config.settings import DatabaseSettings

    mysql_impl = UTCDateTime().load_dialect_impl(mysql.dialect())
    assert getattr(mysql_impl, "fsp", None) == 6
    assert UTCDateTime().load_dialect_impl(postgresql.dialect()).timezone is True  # type: ignore[attr-defined]
    assert UTCDateTime().load_dialect_impl(sqlite.dialect()) is not None
    assert DatabaseSettings(url="sqlite+aiosqlite:///x.db").url.startswith("sqlite")
