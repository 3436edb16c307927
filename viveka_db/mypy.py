"""A mypy plugin that lets derived query stubs keep their ``...`` body.

mypy reports ``[empty-body]`` for a method declared to return ``list[User]``, ``int`` or
``bool`` whose body is ``...``, because it cannot know that the repository implements the
method from its name when the class is created. This plugin tells it so: in a subclass of
``DbRepo`` (or any ``DerivedQueryRepository``), a method whose name is a derived query
(``find_by_*``, ``find_all_by_*``, ``count_by_*``, ``exists_by_*``, ...) and whose body is
empty (``...``, ``pass``, a docstring) is treated as generated, so mypy checks its callers
against the declared signature and does not ask for a body. pyright needs nothing: it
accepts ``...`` bodies already.

Enable it next to pydantic's (``pyproject.toml``)::

    [tool.mypy]
    plugins = ["viveka_db.mypy"]
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import Decorator, FuncDef, TypeInfo
from mypy.plugin import ClassDefContext, Plugin
from mypy.semanal import is_trivial_body

from viveka_db.repository.derived_names import DERIVED_NAME

__all__ = ["REPOSITORY_BASES", "VivekaDbPlugin", "plugin"]

REPOSITORY_BASES = (
    "viveka_db.repository.derived.DerivedQueryRepository",
    "viveka_db.base.db_repo.DbRepo",
)
"""Classes whose subclasses implement derived query methods."""


def _mark_derived_stubs(ctx: ClassDefContext) -> None:
    info = ctx.cls.info
    if not any(info.has_base(base) for base in REPOSITORY_BASES):
        return
    for name, symbol in info.names.items():
        node = symbol.node
        func = node.func if isinstance(node, Decorator) else node
        if (
            isinstance(func, FuncDef)
            and DERIVED_NAME.match(name) is not None
            and is_trivial_body(func.body)
        ):
            symbol.plugin_generated = True  # mypy then does not require a body


class VivekaDbPlugin(Plugin):
    """Marks the derived query stubs of repository classes as implemented."""

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        # Only for repository bases (DbRepo, or the user's own generic base over it): mypy
        # asks the plugins in order and uses the first hook, so answering for every class
        # would hide other plugins' hooks (pydantic's for BaseModel).
        if fullname in REPOSITORY_BASES:
            return _mark_derived_stubs
        symbol = self.lookup_fully_qualified(fullname)
        base = symbol.node if symbol is not None else None
        if isinstance(base, TypeInfo) and any(base.has_base(name) for name in REPOSITORY_BASES):
            return _mark_derived_stubs
        return None


def plugin(version: str) -> type[Plugin]:
    """The entry point mypy calls (``plugins = ["viveka_db.mypy"]``)."""
    return VivekaDbPlugin
