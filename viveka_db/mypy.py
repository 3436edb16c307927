"""A mypy plugin that lets derived query stubs keep their ``...`` body.

mypy reports ``[empty-body]`` for a method declared to return ``list[User]``, ``int`` or
``bool`` whose body is ``...``, because it cannot know that the repository implements the
method from its name when the class is created. This plugin tells it so: in a subclass of
``DbRepo`` (or any ``DerivedQueryRepository``), a method whose name is a derived query
(``find_by_*``, ``find_all_by_*``, ``count_by_*``, ``exists_by_*``, ...) and whose body is
empty (``...``, ``pass``, a docstring) is treated as generated, so mypy checks its callers
against the declared signature and does not ask for a body. A method with such a body whose
name is *not* a derived query (``get_by_name``, ``fnd_by_name``) is reported as an error
(``[derived-stub]``): the repository refuses it when the class is created, and without the
plugin mypy would accept a stub returning ``User | None``. pyright needs nothing: it
accepts ``...`` bodies already.

Enable it next to pydantic's (``pyproject.toml``)::

    [tool.mypy]
    plugins = ["viveka_db.mypy"]
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.errorcodes import ErrorCode
from mypy.nodes import (
    Decorator,
    EllipsisExpr,
    ExpressionStmt,
    FuncDef,
    PassStmt,
    StrExpr,
    TypeInfo,
)
from mypy.plugin import ClassDefContext, Plugin
from mypy.semanal import is_trivial_body

from viveka_db.repository.derived_names import DERIVED_NAME, DERIVED_PREFIXES

__all__ = ["MISNAMED_STUB", "REPOSITORY_BASES", "VivekaDbPlugin", "plugin"]

REPOSITORY_BASES = (
    "viveka_db.repository.derived.DerivedQueryRepository",
    "viveka_db.base.db_repo.DbRepo",
)
"""Classes whose subclasses implement derived query methods."""


MISNAMED_STUB = ErrorCode(
    "derived-stub", "A repository method without a body whose name is no derived query", "General"
)
"""The error code of a stub the repository would refuse at run time (``get_by_name``)."""


def _is_stub_body(func: FuncDef) -> bool:
    """``[docstring] ...|pass``: what the repository treats as a stub at run time."""
    body = list(func.body.body)
    if body and isinstance(body[0], ExpressionStmt) and isinstance(body[0].expr, StrExpr):
        body = body[1:]
    return all(
        isinstance(stmt, PassStmt)
        or (isinstance(stmt, ExpressionStmt) and isinstance(stmt.expr, EllipsisExpr))
        for stmt in body
    )


def _mark_derived_stubs(ctx: ClassDefContext) -> None:
    info = ctx.cls.info
    if not any(info.has_base(base) for base in REPOSITORY_BASES):
        return
    for name, symbol in info.names.items():
        node = symbol.node
        func = node.func if isinstance(node, Decorator) else node
        if not isinstance(func, FuncDef) or not is_trivial_body(func.body):
            continue
        if DERIVED_NAME.match(name) is not None:
            symbol.plugin_generated = True  # mypy then does not require a body
        elif (
            isinstance(node, FuncDef)  # a decorated stub (@query, ...) has a body elsewhere
            and func.is_coroutine
            and not name.startswith("_")
            and not func.abstract_status
            and _is_stub_body(func)
        ):
            ctx.api.fail(
                f'"{name}" has no body but is not a derived query name, so nothing implements '
                f"it (the class raises DerivedQueryError when it is created); derived query "
                f"names start with {', '.join(p + '_' for p in DERIVED_PREFIXES)}",
                func,
                code=MISNAMED_STUB,
            )


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
