"""The shipped mypy plugin: derived stubs need no body under ``mypy --strict`` with it.

Runs the real mypy twice on one README-style repository: without the plugin mypy reports
``[empty-body]`` for the stubs returning ``list``/``int``/``bool`` (the problem the plugin
exists for), with it the file is clean and the stubs keep their declared types.
"""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is in the dev extra: pip install -e '.[dev]'")

SOURCE = '''
from typing import TypeVar, assert_type

from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import DbRepo, IntPKMixin, VivekaDbBase, entity, table


@entity
@table("typing_plugin_users")
class User(VivekaDbBase, IntPKMixin):
    email: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]


T = TypeVar("T", bound=VivekaDbBase)


class BaseRepo(DbRepo[T]):
    """A project's own generic base: its subclasses' stubs are derived too."""


class UserRepo(BaseRepo[User]):
    async def find_by_email_and_name(self, email: str, name: str) -> User | None: ...
    async def find_all_by_name(self, name: str) -> list[User]: ...
    async def count_by_name(self, name: str) -> int: ...
    async def exists_by_email(self, email: str) -> bool:
        """Docstring first is fine."""
        ...

    async def not_derived(self) -> int: ...  # not a derived name: still an error
    async def get_by_name(self, name: str) -> User | None: ...  # misnamed: an error too

    async def _private_hook(self) -> None:
        pass  # private: left alone


async def use(repo: UserRepo) -> None:
    assert_type(await repo.find_all_by_name("a"), list[User])
    assert_type(await repo.count_by_name("a"), int)
'''


def _mypy(directory: Path, plugins: str) -> list[str]:
    """mypy --strict's error lines for SOURCE with ``plugins``."""
    directory.mkdir()
    (directory / "repo_stubs.py").write_text(SOURCE)
    (directory / "mypy.ini").write_text(f"[mypy]\nstrict = True\nplugins = {plugins}\n")
    stdout, stderr, _ = api.run(
        [
            "--config-file",
            str(directory / "mypy.ini"),
            "--cache-dir",
            str(directory / ".mypy_cache"),
            str(directory / "repo_stubs.py"),
        ]
    )
    assert not stderr, stderr
    return [line for line in stdout.splitlines() if ": error:" in line]


@pytest.mark.slow
def test_derived_stubs_pass_mypy_strict_with_the_plugin(tmp_path: Path) -> None:
    without = _mypy(tmp_path / "without", "pydantic.mypy")
    # the list, int and bool stubs, and the method that is not derived; without the plugin
    # mypy accepts the misnamed stub returning `User | None` (it may return None)
    assert len(without) == 4 and all("[empty-body]" in line for line in without), without
    with_plugin = _mypy(tmp_path / "with", "viveka_db.mypy, pydantic.mypy")  # either order
    by_line: dict[str, list[str]] = {}
    for line in with_plugin:
        source = SOURCE.splitlines()[int(line.split(":")[1]) - 1].strip().split("(")[0]
        by_line.setdefault(source, []).append(line)
    assert set(by_line) == {"async def not_derived", "async def get_by_name"}, with_plugin
    not_derived = " ".join(by_line["async def not_derived"])
    assert "[empty-body]" in not_derived
    assert "[derived-stub]" in not_derived  # refused at run time too
    (misnamed,) = by_line["async def get_by_name"]
    assert "[derived-stub]" in misnamed and "find_by_" in misnamed
