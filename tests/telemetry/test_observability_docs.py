"""Every Python example of ``docs/observability.md`` runs, and prints what the page says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tooling.cli import ROOT, cli_env

PAGE = ROOT / "docs" / "observability.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)


def run(code: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) == 3


def test_console_example_prints_the_span_tree_and_metrics(tmp_path: Path) -> None:
    out = run(BLOCKS[0], tmp_path)
    assert '"name": "NoteService.add"' in out
    assert '"name": "INSERT obs_notes"' in out
    assert '"kind": "SpanKind.CLIENT"' in out
    assert '"db.query.text": "INSERT INTO obs_notes (text) VALUES (?) RETURNING id"' in out
    assert "hello" not in out  # the bound value
    assert '"name": "db.client.operation.duration"' in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("index", [1, 2])
def test_other_examples_run(index: int, tmp_path: Path) -> None:
    out = run(BLOCKS[index], tmp_path)
    if index == 1:
        assert "up [('default', 'primary', True), ('cache', 'MemoryCache', True)]" in out
        assert "200 up" in out
