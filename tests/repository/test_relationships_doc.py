"""docs/how-to/relationships.md runs as written, on every backend.

Its Python blocks form one script: they are loaded once as a module (entities can be
mapped once per process), then its ``main()`` runs against each backend's database.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from viveka_db import DatabaseSessionFactory

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "relationships.md"
MODULE = "viveka_docs_relationships"


def _load_page() -> types.ModuleType:
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 5
    module = types.ModuleType(MODULE)
    module.__file__ = str(PAGE)
    sys.modules[MODULE] = module  # classes must be importable by name (cache, type hints)
    exec(compile("\n".join(blocks), str(PAGE), "exec"), module.__dict__)
    return module


page = _load_page()


async def test_the_relationships_page_runs(db: DatabaseSessionFactory) -> None:
    await page.main()
