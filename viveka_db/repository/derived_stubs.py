"""Which methods are stubs: ``async def`` bodies with nothing to run.

A stub is an ``async def`` whose body is ``...`` or ``pass``, after an optional docstring
(or only a docstring). On a repository, a stub whose name is a derived query is implemented
from its name; any other stub is a mistake (``get_by_name``, ``search_by_name``,
``fnd_by_name`` would quietly return ``None``), refused when the class is created. A
deliberately empty method says so with ``return None``; private (``_name``) and abstract
methods are left alone.
"""

from __future__ import annotations

import ast
import difflib
import dis
import inspect
import textwrap
import types
import typing
from collections.abc import Callable
from typing import Any

from viveka_db.errors import DerivedQueryError
from viveka_db.repository.derived_names import DERIVED_NAME, DERIVED_PREFIXES

__all__ = ["check_stub_names", "is_stub"]


_IGNORED_OPS = frozenset({"CACHE", "NOP", "RESUME", "EXTENDED_ARG"})


def _shape(code: types.CodeType) -> tuple[tuple[str, object], ...]:
    """The instructions of ``code`` by name and resolved argument, bookkeeping removed.

    Comparing resolved arguments (not raw bytecode) makes a docstring irrelevant: it shifts
    the index of ``None`` in ``co_consts`` but not the value loaded.
    """
    return tuple(
        (ins.opname, ins.argval)
        for ins in dis.get_instructions(code)
        if ins.opname not in _IGNORED_OPS
    )


async def _stub_ellipsis(self: Any) -> None: ...


async def _stub_pass(self: Any) -> None:
    pass


async def _stub_doc(self: Any) -> None:
    """Doc."""
    ...


async def _stub_doc_pass(self: Any) -> None:
    """Doc."""


_STUB_SHAPES = frozenset(
    _shape(f.__code__) for f in (_stub_ellipsis, _stub_pass, _stub_doc, _stub_doc_pass)
)


def _is_stub_node(node: ast.stmt) -> bool:
    return isinstance(node, ast.Pass) or (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and node.value.value is Ellipsis
    )


def _source_is_stub(fn: Callable[..., Any]) -> bool | None:
    """Whether the source body is ``[docstring] ...|pass``; ``None`` without source."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    node = next(iter(tree.body), None)
    if not isinstance(node, ast.AsyncFunctionDef) or node.name != fn.__name__:
        return None
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # the docstring
    return all(_is_stub_node(stmt) for stmt in body)


def is_stub(fn: object) -> bool:
    """Whether ``fn`` is an ``async def`` whose body is an optional docstring then ``...``/``pass``.

    The compiled code must have a stub's shape (return ``None`` and nothing else); where the
    source is available it decides, so an explicit ``return None`` body is never replaced.
    """
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType) or not inspect.iscoroutinefunction(fn):
        return False
    if _shape(code) not in _STUB_SHAPES:
        return False
    from_source = _source_is_stub(typing.cast(Callable[..., Any], fn))
    return True if from_source is None else from_source


def check_stub_names(cls: type) -> None:
    """Raise :class:`DerivedQueryError` for a stub of ``cls`` whose name is no derived query."""
    for name, fn in vars(cls).items():
        if (
            name.startswith("_")
            or DERIVED_NAME.match(name) is not None
            or getattr(fn, "__isabstractmethod__", False)
            or not is_stub(fn)
        ):
            continue
        raise DerivedQueryError(_misnamed_message(cls.__name__, name))


def _misnamed_message(owner: str, name: str) -> str:
    prefixes = ", ".join(f"{prefix}_" for prefix in DERIVED_PREFIXES)
    message = (
        f"{owner}.{name} has a stub body (..., pass or a docstring), but {name!r} is not a "
        f"derived query name, so nothing would implement it; derived query names start with "
        f"{prefixes} "
        "(e.g. find_by_email). Rename it, or give it a body (a deliberately empty method: "
        "return None)"
    )
    head, sep, rest = name.partition("_by_")
    close = difflib.get_close_matches(head + sep, [f"{p}_" for p in DERIVED_PREFIXES], n=1)
    if sep and close:
        message += f"; did you mean {close[0]}{rest}?"
    return message
