"""The module import paths kept as aliases of the package-level names.

``docs/reference/index.md`` lists them ("Module import paths"); this pins the list, runs the
product page's usage imports as written, and checks every alias is the very object
``viveka_db`` exports (an alias that were a copy would split registries and ``isinstance``).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import viveka_db

ROOT = Path(__file__).resolve().parents[1]

#: module path -> the names it keeps, exactly as docs/reference/index.md lists them
ALIASES: dict[str, list[str]] = {
    "viveka_db.base.db_base": ["VivekaDbBase"],
    "viveka_db.base.db_repo": ["DbRepo", "Page", "Slice"],
    "viveka_db.decorator.db_decorator": [
        "entity",
        "table",
        "repository",
        "transactional",
        "cacheable",
        "cache_evict",
        "query",
    ],
    "viveka_db.session.db_session": ["DatabaseSessionFactory"],
    "viveka_db.middleware.db_middleware": ["DbMiddleware"],
    "viveka_db.context.db_context": ["current_session", "get_current_session", "bind_session"],
    "viveka_db.cache.db_cache": [
        "RedisCache",
        "MemoryCache",
        "NullCache",
        "CacheBackend",
        "CacheStats",
        "get_cache",
        "use_cache",
    ],
}

#: the import statements of the product page's usage examples (sections 1-4), verbatim
PRODUCT_PAGE_IMPORTS = """\
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.middleware.db_middleware import DbMiddleware
from viveka_db.base.db_base import VivekaDbBase
from viveka_db.decorator.db_decorator import entity, table
from viveka_db.base.db_repo import DbRepo
from viveka_db.decorator.db_decorator import repository, transactional, cacheable, cache_evict
"""

#: packages whose own ``__all__`` is public (optional parts and extension points)
PUBLIC_PACKAGES = {
    "viveka_db",
    "viveka_db.cache",
    "viveka_db.codegen",
    "viveka_db.config",
    "viveka_db.dialects",
    "viveka_db.health",
    "viveka_db.integrations.fastapi",
    "viveka_db.locks",
    "viveka_db.migrations",
    "viveka_db.outbox",
    "viveka_db.replicas",
    "viveka_db.telemetry",
    "viveka_db.tenancy",
    "viveka_db.testing",
}

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
IMPORT = re.compile(r"^\s*(?:from (viveka_db[\w.]*) import|import (viveka_db[\w.]*))", re.M)


@pytest.mark.parametrize(("module_name", "names"), sorted(ALIASES.items()))
def test_each_alias_is_the_package_level_object(module_name: str, names: list[str]) -> None:
    module = importlib.import_module(module_name)
    for name in names:
        assert name in viveka_db.__all__, name
        assert getattr(module, name) is getattr(viveka_db, name), f"{module_name}.{name}"


def test_the_product_page_imports_run_as_written() -> None:
    namespace: dict[str, object] = {}
    exec(PRODUCT_PAGE_IMPORTS, namespace)
    for name, value in namespace.items():
        if not name.startswith("__"):
            assert value is getattr(viveka_db, name), name


def test_the_product_page_imports_are_listed_as_aliases() -> None:
    for module_name, names in re.findall(r"^from (\S+) import (.+)$", PRODUCT_PAGE_IMPORTS, re.M):
        for name in names.split(", "):
            assert name in ALIASES[module_name], f"{module_name}.{name}"


def test_the_alias_paths_work_in_a_fresh_interpreter() -> None:
    """An alias module imported first (before ``import viveka_db``) gives the same objects."""
    for module_name, names in ALIASES.items():
        check = (
            f"from {module_name} import {', '.join(names)}\n"
            "import viveka_db\n"
            f"assert all(globals()[n] is getattr(viveka_db, n) for n in {names!r})\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (module_name, result.stderr)


def test_the_reference_lists_exactly_these_aliases() -> None:
    text = (ROOT / "docs" / "reference" / "index.md").read_text(encoding="utf-8")
    section = text.split("## Module import paths", 1)[1]
    rows = re.findall(r"^\| `(viveka_db\.[\w.]+)` \| (.+) \|$", section, re.M)
    documented = {module: re.findall(r"`(\w+)`", names) for module, names in rows}
    assert documented == ALIASES


def test_docs_import_only_public_paths() -> None:
    """README and docs import from ``viveka_db``, a public package, or a listed alias path."""
    allowed = PUBLIC_PACKAGES | set(ALIASES)
    wrong: list[str] = []
    for page in PAGES:
        for match in IMPORT.finditer(page.read_text(encoding="utf-8")):
            module = match[1] or match[2]
            if module not in allowed:
                wrong.append(f"{page.relative_to(ROOT)}: {module}")
    assert wrong == []
