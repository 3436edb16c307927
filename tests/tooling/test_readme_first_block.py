"""The README's first Python block runs as written in an empty directory.

A reader copies it before writing any ``config.ini``; it must not need one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mktestdocs import grab_code_blocks

from tests.tooling.cli import ROOT, cli_env


def test_the_first_block_needs_no_file(tmp_path: Path) -> None:
    first = grab_code_blocks((ROOT / "README.md").read_text(encoding="utf-8"), lang="python")[0]
    assert list(tmp_path.iterdir()) == []
    result = subprocess.run(
        [sys.executable, "-c", first],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DatabaseSessionFactory" in first
