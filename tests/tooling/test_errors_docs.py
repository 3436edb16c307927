"""docs/how-to/errors.md: its example runs as written, and its table matches the adapters."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.tooling.cli import ROOT, cli_env
from viveka_db.dialects.base import BY_SQLSTATE
from viveka_db.dialects.mysql import _BY_ERRNO  # pyright: ignore[reportPrivateUsage]

PAGE = ROOT / "docs" / "how-to" / "errors.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_example_runs() -> None:
    blocks = python_blocks()
    assert blocks
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block],
            cwd=ROOT,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "duplicate key on doc_accounts(email)" in result.stdout


def table_rows() -> dict[str, str]:
    rows = re.findall(r"^\| `(\w+)` \|(.*)$", PAGE.read_text(), flags=re.M)
    return dict(rows)


def test_table_lists_every_code_the_adapters_map() -> None:
    rows = table_rows()
    for sqlstate, family in BY_SQLSTATE.items():
        assert f"`{sqlstate}`" in rows[family.__name__].split("|")[0], sqlstate
    for errno, parse in _BY_ERRNO.items():
        family = parse("").family
        assert f"`{errno}`" in rows[family.__name__].split("|")[1], errno
