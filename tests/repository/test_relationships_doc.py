"""docs/how-to/relationships.md runs as written, on every backend.

Its Python blocks form one script, run in a fresh interpreter as a reader would run it
(``DATABASE_URL`` pointing at the backend's test database): its entities share names with
the test models, so they cannot be mapped in this process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "relationships.md"


def test_the_relationships_page_runs(backend_url: str, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 5
    script = tmp_path / "relationships_example.py"
    script.write_text("\n".join(blocks))
    env = {**os.environ, "DATABASE_URL": backend_url}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Article.tags was not loaded" in done.stdout
    assert "first: Async ORM" in done.stdout
