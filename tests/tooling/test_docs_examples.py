"""Every ```` ```python ```` block of README.md and docs/ runs, as written, in CI.

Blocks are extracted with mktestdocs. Each page runs in a fresh interpreter, in a
directory of its own holding a ``config.ini`` (SQLite file, in-process cache), because
pages define the same entities (a ``users`` table) and would collide in one process:

* a block whose first line is a path comment (``# myapp/entities.py``) is written to that
  file, so later blocks import it as the page says;
* the other blocks of a page run in order in one namespace, top-level ``await`` allowed
  (as in ``python -m asyncio``);
* a page whose blocks define ``test_*`` functions, and file blocks named ``test_*.py``, are
  run with pytest (their tests use the ``db_session``/``memory_cache`` fixtures of
  viveka_db's pytest plugin).

A block that cannot run on its own is a *fragment*: fenced as ```` ```py ```` (highlighted
the same) right after an HTML comment ``<!-- fragment: why -->``. Fragments are listed by
:func:`test_fragments_say_why`.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mktestdocs import grab_code_blocks

from tests.tooling.cli import ROOT, cli_env

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FILE_COMMENT = re.compile(r"^# (?P<path>[\w/]+\.py)\s*$")
FRAGMENT = re.compile(r"<!-- fragment: (?P<why>[^>]+?) -->[ \t]*\n[ \t]*```py\n")

RUNNER = '''
import ast, asyncio, json, sys, types

module = types.ModuleType("docpage")
module.__file__ = "docpage.py"
sys.modules["docpage"] = module
loop = asyncio.new_event_loop()  # one loop for every block, not running between them
asyncio.set_event_loop(loop)
for number, source in enumerate(json.load(open(sys.argv[1])), 1):
    code = compile(source, f"<block {number}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, module.__dict__)
    if asyncio.iscoroutine(result):
        loop.run_until_complete(result)

from viveka_db import DatabaseSessionFactory
from viveka_db.cache.setup import close_cache

asyncio.set_event_loop(loop)
loop.run_until_complete(DatabaseSessionFactory.close_all())
loop.run_until_complete(close_cache())
loop.close()
print("page ran")
'''


def _relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _defines_tests(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # top-level await: a runnable page, not a test module
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
        for node in tree.body
    )


def _split(page: Path) -> tuple[dict[str, str], list[str]]:
    """The page's file blocks (path -> source) and its other blocks, in order."""
    files: dict[str, str] = {}
    blocks: list[str] = []
    for block in grab_code_blocks(page.read_text(encoding="utf-8"), lang="python"):
        first = block.splitlines()[0] if block.strip() else ""
        match = FILE_COMMENT.match(first)
        if match is not None:
            files[match["path"]] = block
        else:
            blocks.append(block)
    return files, blocks


RUNNABLE = [page for page in PAGES if any(_split(page))]


@pytest.mark.parametrize("page", RUNNABLE, ids=_relative)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    files, blocks = _split(page)
    for name, source in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        target.write_text(source)
    database = tmp_path / "docs.db"
    (tmp_path / "config.ini").write_text(
        f"[database]\nurl = sqlite+aiosqlite:///{database}\n\n[cache]\nurl = memory://\n"
    )
    env = cli_env(PYTHONPATH=f"{tmp_path}:{ROOT}")

    def run(*command: str) -> str:
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{_relative(page)}:\n{output}"
        return result.stdout

    tests = [name for name in files if Path(name).name.startswith("test_")]
    source = "\n\n".join(blocks)
    if blocks and _defines_tests(source):
        (tmp_path / "test_docpage.py").write_text(source)
        tests.append("test_docpage.py")
    elif blocks:
        (tmp_path / "blocks.json").write_text(json.dumps(blocks))
        (tmp_path / "run_page.py").write_text(RUNNER)
        assert "page ran" in run(sys.executable, "run_page.py", "blocks.json")
    if tests:
        url = f"sqlite+aiosqlite:///{tmp_path / 'tests.db'}"
        pytest_args = ["-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"]
        pytest_args += ["-o", f"viveka_db_url={url}", "--rootdir", str(tmp_path), *tests]
        assert " passed" in run(sys.executable, "-m", "pytest", *pytest_args)


def test_fragments_say_why() -> None:
    """Every ```` ```py ```` block follows a ``<!-- fragment: why -->`` comment."""
    fragments: list[str] = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        marked = len(FRAGMENT.findall(text))
        fenced = len(re.findall(r"^[ \t]*```py$", text, flags=re.MULTILINE))
        assert marked == fenced, f"{_relative(page)}: a ```py block lacks <!-- fragment: why -->"
        fragments += [f"{_relative(page)}: {m['why']}" for m in FRAGMENT.finditer(text)]
    print("\n".join(fragments))
