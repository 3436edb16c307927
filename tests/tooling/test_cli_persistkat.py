"""persistkat's eight command lines run as written, and so do their viveka-db equivalents.

The lines are read from docs/how-to/cli-from-persistkat.md (the block after its
``<!-- persistkat lines ... -->`` comment, and the table beside it) and each is run as a
subprocess in a fresh project, on SQLite and on a PostgreSQL database of the test's own.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tooling import cli
from tests.tooling.cli import ROOT, SQLITE_AND_POSTGRESQL, cli_env, run_cli

PAGE = ROOT / "docs" / "how-to" / "cli-from-persistkat.md"

# persistkat's documentation, its Quick Start and "CLI Tools" sections
PERSISTKAT_LINES = [
    "persistkat db init",
    "persistkat codegen generate-schemas your_app.models --output schemas.py",
    "persistkat db create add_users_table",
    "persistkat db up",
    "persistkat db status",
    "persistkat db down",
    "persistkat db health",
    "persistkat version",
]

MODELS = '''
"""persistkat's example User, as a viveka_db entity."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import TimestampMixin, UUIDPKMixin, VivekaDbBase, entity, table


@entity
@table("users")
class User(VivekaDbBase, UUIDPKMixin, TimestampMixin):
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
'''


def documented_lines() -> list[str]:
    """The command lines of the page's persistkat block, in order."""
    text = PAGE.read_text(encoding="utf-8")
    block = re.search(r"<!-- persistkat lines[^>]*-->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert block is not None, "the persistkat block is missing from the page"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def documented_pairs() -> list[tuple[str, str]]:
    """(persistkat's line, viveka-db's own command) for each row of the page's table."""
    rows = re.findall(r"^\| `(viveka-db [^`]+)` \| `(viveka-db [^`]+)` \|$", PAGE.read_text(), re.M)
    return [(str(theirs), str(ours)) for theirs, ours in rows]


def test_the_page_shows_every_line_as_written() -> None:
    as_written = [line.replace("persistkat", "viveka-db", 1) for line in PERSISTKAT_LINES]
    assert documented_lines() == as_written
    assert [theirs for theirs, _ in documented_pairs()] == as_written


def test_help_names_the_aliases() -> None:
    output = run_cli("db", "--help", cwd=ROOT, env=cli_env()).stdout
    assert "Alias of `db revision -m NAME`" in output
    assert "Alias of `db upgrade`" in output
    assert "Alias of `db downgrade -1`" in output
    codegen = run_cli("codegen", "--help", cwd=ROOT, env=cli_env()).stdout
    assert "Alias of `codegen schemas`" in codegen


@pytest.fixture
def project(
    backend: str, backend_url: str, tmp_path: Path
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project with config.yaml, your_app/models.py and a database of its own.

    No migrations directory: the first ``db create`` sets it up.
    """
    with cli.own_database(backend, backend_url, tmp_path, "persistkat") as url:
        root = tmp_path / "project"
        (root / "your_app").mkdir(parents=True)
        (root / "your_app" / "__init__.py").write_text("")
        (root / "your_app" / "models.py").write_text(MODELS)
        # persistkat's config.yaml layout, found in the working directory
        (root / "config.yaml").write_text(
            f"name: my-app\ndatabase:\n  dsn: {url}\n  models: your_app.models\n"
        )
        yield root, cli_env()


def _run_line(line: str, root: Path, env: dict[str, str]) -> str:
    program, *args = shlex.split(line)
    assert program == "viveka-db"
    result = run_cli(*args, cwd=root, env=env)
    return result.stdout + result.stderr


def _check(index: int, output: str, root: Path) -> None:
    """What each of the eight lines must have done (by position in the block)."""
    versions = root / "migrations" / "versions"
    expected = {
        0: lambda: "created: users" in output,
        1: lambda: "class UserCreate(" in (root / "schemas.py").read_text(),
        2: lambda: (
            len(list(versions.glob("*_add_users_table.py"))) == 1
            and "created migrations/env.py" in output
        ),
        3: lambda: "Running upgrade" in output,
        4: lambda: "up to date" in output,
        5: lambda: "Running downgrade" in output,
        6: lambda: "database: ok" in output,
        7: lambda: output.startswith("viveka-db "),
    }
    assert expected[index](), output


@pytest.mark.parametrize("backend", SQLITE_AND_POSTGRESQL, indirect=True)
def test_persistkat_lines_run_as_written(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    lines = documented_lines()
    assert len(lines) == 8
    for index, line in enumerate(lines):
        _check(index, _run_line(line, root, env), root)
    status = run_cli("db", "status", cwd=root, env=env).stdout
    assert "unversioned" in status and "pending: 1" in status  # `db down` reverted it
    again = run_cli("db", "down", cwd=root, env=env, check=False)  # nothing left to revert
    assert again.returncode == 1 and "cannot revert 1 revision(s)" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "backend", [pytest.param("sqlite", marks=pytest.mark.sqlite)], indirect=True
)
def test_our_own_words_do_the_same(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    pairs = documented_pairs()
    assert len(pairs) == 8
    for index, (_, ours) in enumerate(pairs):
        _check(index, _run_line(ours, root, env), root)
