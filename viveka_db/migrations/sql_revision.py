"""Plain-SQL revisions: the upgrade and downgrade are SQL text held in the revision file.

``viveka-db db revision -m NAME --sql`` (or ``db create NAME --sql``) writes a revision
whose ``upgrade()`` and ``downgrade()`` each call :func:`run_sql` with a block of SQL, so a
reviewer reads the SQL itself. Running it goes through Alembic like any revision: the same
transaction, ``alembic_version`` bookkeeping, and ``db upgrade --sql`` prints it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from viveka_db.migrations.sql_text import split_statements

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["create_sql_revision", "run_sql"]

_UPGRADE = "-- The SQL that applies this revision. End each statement with a semicolon."
_DOWNGRADE = "-- The SQL that reverts it (run by `viveka-db db downgrade`)."


def run_sql(sql: str) -> None:
    """Run each statement of ``sql`` through the current migration (``op.execute``).

    Statements are split at semicolons outside strings, quoted names, comments and
    PostgreSQL dollar-quoted bodies. A colon is sent as written (never a bind parameter).
    """
    from alembic import op
    from sqlalchemy import text

    dialect = op.get_context().dialect.name
    for statement in split_statements(textwrap.dedent(sql), dialect):
        op.execute(text(statement.replace(":", "\\:")))


def _call(comment: str) -> str:
    """The body of an upgrade/downgrade function: a ``run_sql`` call holding ``comment``."""
    lines = ["run_sql(", '    """', f"    {comment}", "", '    """', ")"]
    return "\n    ".join(lines).replace("\n    \n", "\n\n")


def create_sql_revision(config: Config, message: str) -> Path:
    """Write a plain-SQL revision after the current head; return its path."""
    from alembic import util
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config).generate_revision(
        util.rev_id(),
        message,
        refresh=True,
        head="head",
        imports="from viveka_db.migrations import run_sql",
        upgrades=_call(_UPGRADE),
        downgrades=_call(_DOWNGRADE),
    )
    if script is None:  # pragma: no cover - Alembic returns None only with refresh=False
        raise RuntimeError("Alembic wrote no revision")
    return Path(script.path)
