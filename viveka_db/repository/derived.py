"""Derived query methods: ``async def find_by_email_and_is_active(self, email, is_active): ...``

A method of a ``DbRepo[Entity]`` subclass whose body is ``...`` or ``pass`` (after an optional
docstring) and whose name follows the grammar below is implemented from its name when the
class is created; a method with any other body is left alone. Names are checked
against the entity's mapped attributes then, so a typo fails at import with a message
listing the valid attributes. Arguments bind to the conditions in order.

Grammar (snake case, Spring Data's)::

    subject    find_by | find_first_by | find_top_<N>_by | find_all_by
               | count_by | exists_by | delete_by
    condition  <attribute>[_<operator>]      joined by _and_ / _or_ (AND binds tighter)
    operator   not | greater_than | greater_than_equal | less_than | less_than_equal
               | between (2 args, inclusive) | like | not_like (caller supplies %)
               | in | not_in (1 iterable) | is_null | is_not_null (no args)
    order      _order_by_<attribute>[_asc|_desc][_and_<attribute>[_asc|_desc]...]
               (then the primary key; NULLs last ascending, first descending, as ``sort=``)

An attribute may walk relationships (``author_username``, ``tags_name``, nested up to
:data:`~viveka_db.repository.paths.MAX_PATH_DEPTH`); see :mod:`~viveka_db.repository.paths`.

``find_by``/``find_first_by`` return the entity or ``None``, ``find_top_N_by`` and
``find_all_by`` a list, ``count_by`` an ``int``, ``exists_by`` a ``bool``. Finders take
``load=``; a finder annotated to return a dataclass, ``NamedTuple`` or Pydantic model
(``-> list[TitleOnly]``) selects only that class's columns and returns instances of it.
``delete_by`` is one ``DELETE ... WHERE`` (one ``UPDATE`` of ``deleted_at`` for a
soft-delete entity) returning the row count: no row is loaded, so ORM cascades and version
checks do not run (use the database's ``ON DELETE`` actions), and rows already gone simply
do not count. All honour the view's soft-delete visibility and run under ``@transactional``.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.decorator.transactional import implicit_transactional
from viveka_db.errors import DerivedQueryError, UnknownFieldError
from viveka_db.repository.base import (
    T,
    _model_from_generic,  # pyright: ignore[reportPrivateUsage]
)
from viveka_db.repository.bulk_delete import delete_where
from viveka_db.repository.derived_names import DERIVED_NAME as _SUBJECT
from viveka_db.repository.loading import load_options
from viveka_db.repository.paths import AttributePath, JoinPlan, attribute_paths, path_criterion
from viveka_db.repository.projection import (
    Projection,
    ProjectionRepository,
    projection_for,
    projection_target,
)
from viveka_db.repository.sorting import order_clauses, resolve_sort

__all__ = ["DerivedQuery", "DerivedQueryRepository", "parse_derived_name"]


def _eq(c: Any, v: Any) -> Any:
    return c == v


def _ne(c: Any, v: Any) -> Any:
    return c != v


def _gt(c: Any, v: Any) -> Any:
    return c > v


def _ge(c: Any, v: Any) -> Any:
    return c >= v


def _lt(c: Any, v: Any) -> Any:
    return c < v


def _le(c: Any, v: Any) -> Any:
    return c <= v


def _like(c: Any, v: Any) -> Any:
    return c.like(v)


def _not_like(c: Any, v: Any) -> Any:
    return c.not_like(v)


def _in(c: Any, v: Any) -> Any:
    return c.in_(list(v))


def _not_in(c: Any, v: Any) -> Any:
    return c.not_in(list(v))


def _between(c: Any, low: Any, high: Any) -> Any:
    return c.between(low, high)


def _is_null(c: Any) -> Any:
    return c.is_(None)


def _is_not_null(c: Any) -> Any:
    return c.is_not(None)


_OPERATORS: dict[str, tuple[int, Callable[..., ColumnElement[bool]]]] = {
    "eq": (1, _eq),
    "not": (1, _ne),
    "greater_than": (1, _gt),
    "greater_than_equal": (1, _ge),
    "less_than": (1, _lt),
    "less_than_equal": (1, _le),
    "between": (2, _between),
    "like": (1, _like),
    "not_like": (1, _not_like),
    "in": (1, _in),
    "not_in": (1, _not_in),
    "is_null": (0, _is_null),
    "is_not_null": (0, _is_not_null),
}
_OPERATOR_NAMES = sorted((op for op in _OPERATORS if op != "eq"), key=len, reverse=True)


@dataclass(frozen=True)
class Condition:
    attribute: str
    operator: str

    @property
    def arity(self) -> int:
        return _OPERATORS[self.operator][0]


@dataclass(frozen=True)
class DerivedQuery:
    """A parsed method name: what to return, the OR-of-ANDs conditions and the order."""

    kind: str
    limit: int | None
    groups: tuple[tuple[Condition, ...], ...]
    order: tuple[tuple[str, bool], ...]

    @property
    def arity(self) -> int:
        return sum(cond.arity for group in self.groups for cond in group)


def _at_boundary(name: str, end: int) -> bool:
    return end == len(name) or name[end] == "_"


def _match_attribute(name: str, pos: int, attributes: Sequence[str]) -> str | None:
    for attr in attributes:  # longest first, so `is_active` wins over `is`
        if name.startswith(attr, pos) and _at_boundary(name, pos + len(attr)):
            return attr
    return None


def parse_derived_name(
    method: str,
    entity: str,
    attributes: Sequence[str],
    order_attributes: Sequence[str] | None = None,
    valid: str | None = None,
) -> DerivedQuery | None:
    """Parse ``method``; ``None`` if it is not a derived-query name at all.

    ``attributes`` are the names a condition may use (paths through relationships
    included), ``order_attributes`` those ``_order_by_`` may use (default: the same) and
    ``valid`` how an error describes them. Raises :class:`DerivedQueryError` naming the
    bad part and the valid attributes.
    """
    match = _SUBJECT.match(method)
    if match is None:
        return None
    kind = match["kind"]
    limit: int | None = None
    if match["top"] is not None:
        limit = int(match["top"])
        if limit < 1:
            raise DerivedQueryError(f"{method}: find_top_N_by needs N >= 1")
        kind = "find_top_by"
    elif kind == "find_first_by":
        limit = 1
    name = match["rest"]
    ordered = sorted(attributes, key=len, reverse=True)
    ordered_sort = (
        ordered if order_attributes is None else sorted(order_attributes, key=len, reverse=True)
    )
    described = valid if valid is not None else ", ".join(sorted(attributes))

    def fail(pos: int, what: str) -> DerivedQueryError:
        return DerivedQueryError(
            f"derived query {method!r}: {what} at {name[pos:]!r}; {entity}'s attributes are: "
            f"{described}"
        )

    groups: list[list[Condition]] = [[]]
    order: list[tuple[str, bool]] = []
    pos = 0
    while True:
        attr = _match_attribute(name, pos, ordered)
        if attr is None:
            raise fail(pos, "unknown attribute")
        operator, pos = _operator_at(name, pos + len(attr))
        groups[-1].append(Condition(attr, operator))
        if pos == len(name):
            break
        if name.startswith("_and_", pos):
            pos += 5
        elif name.startswith("_or_", pos):
            pos += 4
            groups.append([])
        elif name.startswith("_order_by_", pos):
            order = _order_by(name, pos + 10, ordered_sort, fail)
            break
        else:
            raise fail(pos, "expected _and_, _or_, _order_by_ or an operator")
    return DerivedQuery(kind, limit, tuple(tuple(g) for g in groups), tuple(order))


def _operator_at(name: str, pos: int) -> tuple[str, int]:
    """The operator suffix at ``pos`` (``eq`` if none) and the position after it."""
    for op in _OPERATOR_NAMES:
        if name.startswith("_" + op, pos) and _at_boundary(name, pos + len(op) + 1):
            return op, pos + len(op) + 1
    return "eq", pos


def _order_by(
    name: str, pos: int, ordered: Sequence[str], fail: Callable[[int, str], DerivedQueryError]
) -> list[tuple[str, bool]]:
    """The ``_order_by_`` tail from ``pos``: attributes with an optional ``_asc``/``_desc``."""
    order: list[tuple[str, bool]] = []
    while True:
        attr = _match_attribute(name, pos, ordered)
        if attr is None:
            raise fail(pos, "unknown attribute in order_by")
        pos += len(attr)
        descending = False
        for word, desc in (("_desc", True), ("_asc", False)):
            if name.startswith(word, pos) and _at_boundary(name, pos + len(word)):
                descending = desc
                pos += len(word)
                break
        order.append((attr, descending))
        if pos == len(name):
            return order
        pos += 5 if name.startswith("_and_", pos) else 1


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


_FINDERS = frozenset({"find_by", "find_first_by", "find_top_by", "find_all_by"})


@dataclass
class _Returns:
    """The DTO a finder returns, from its return annotation (resolved on first need)."""

    stub: Callable[..., Any]
    mapper: Mapper[Any]
    resolved: bool = False
    projection: Projection | None = None

    def get(self) -> Projection | None:
        if not self.resolved:
            target = projection_target(_return_annotation(self.stub), self.mapper.class_)
            self.projection = None if target is None else projection_for(self.mapper, target)
            self.resolved = True
        return self.projection


def _return_annotation(fn: Callable[..., Any]) -> object:
    """``fn``'s return annotation, evaluated alone (parameter annotations may not resolve)."""
    annotation = inspect.get_annotations(fn).get("return")
    if not isinstance(annotation, str):
        return annotation
    holder = types.SimpleNamespace(__annotations__={"return": annotation})
    holder.__globals__ = getattr(fn, "__globals__", {})
    return typing.get_type_hints(holder).get("return")


def _build(
    query: DerivedQuery,
    stub: Callable[..., Any],
    owner: str,
    paths: dict[str, AttributePath],
    mapper: Mapper[Any],
) -> Callable[..., Any]:
    signature = inspect.signature(stub)
    params = [p for p in list(signature.parameters.values())[1:] if p.name != "load"]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in params):
        raise DerivedQueryError(
            f"{owner}.{stub.__name__}: derived query methods take plain positional parameters "
            "(and an optional keyword-only load=)"
        )
    if len(params) != query.arity:
        raise DerivedQueryError(
            f"{owner}.{stub.__name__} takes {len(params)} argument(s) but its name needs "
            f"{query.arity} (between takes 2, is_null/is_not_null take none)"
        )
    plan = _Plan(
        query,
        tuple(paths[cond.attribute] for group in query.groups for cond in group),
        _Returns(stub, mapper) if query.kind in _FINDERS else None,
    )
    if plan.returns is not None:
        try:
            plan.returns.get()
        except NameError:
            pass  # an annotation naming a class defined later: resolved on the first call
        except (TypeError, UnknownFieldError) as exc:
            raise DerivedQueryError(f"{owner}.{stub.__name__}: {exc}") from exc
    positional = signature.replace(parameters=[next(iter(signature.parameters.values())), *params])

    @functools.wraps(stub)
    async def derived(self: DerivedQueryRepository[Any], *args: Any, **kwargs: Any) -> Any:
        load = kwargs.pop("load", None)
        if load is not None and plan.returns is None:
            raise TypeError(f"{stub.__name__}() loads no entities; it takes no load=")
        bound = positional.bind(self, *args, **kwargs)
        values = list(bound.arguments.values())[1:]
        return await self.run_derived(plan, values, load)

    return implicit_transactional(derived)


@dataclass(frozen=True)
class _Plan:
    query: DerivedQuery
    paths: tuple[AttributePath, ...]
    """The path of each condition, in the order of ``query.groups``."""
    returns: _Returns | None


def _is_mapper(found: object) -> typing.TypeGuard[Mapper[Any]]:
    return isinstance(found, Mapper)


def _mapper_of(model: type[Any] | None) -> Mapper[Any] | None:
    found: object = None if model is None else sa_inspect(typing.cast(Any, model), False)
    return found if _is_mapper(found) else None


def _valid_names(mapper: Mapper[Any]) -> str:
    columns = sorted(prop.key for prop in mapper.column_attrs)
    relationships = sorted(f"{rel.key}_<attribute>" for rel in mapper.relationships)
    return ", ".join(columns + relationships)


class DerivedQueryRepository(ProjectionRepository[T]):
    """Implements derived query methods of subclasses when they are created."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, Any] = {}  # most-derived definition of each name, stubs of bases too
        for klass in reversed(cls.__mro__):
            merged.update(
                (name, fn) for name, fn in vars(klass).items() if _SUBJECT.match(name) is not None
            )
        candidates = {name: fn for name, fn in merged.items() if is_stub(fn)}
        model = _model_from_generic(cls)
        if model is None and len(getattr(cls, "__parameters__", ())) > 0:
            return  # still generic (class Base(DbRepo[T])): its concrete subclasses implement them
        mapper = _mapper_of(model)
        if mapper is not None and "default_load" in vars(cls):
            try:
                load_options(mapper.class_, vars(cls)["default_load"])
            except (TypeError, UnknownFieldError) as exc:
                raise DerivedQueryError(f"{cls.__name__}.default_load: {exc}") from exc
        if not candidates:
            return
        if mapper is None:
            name = next(iter(candidates))
            raise DerivedQueryError(
                f"{cls.__name__}.{name}: derived queries need the entity at class creation; "
                f"declare the repository as DbRepo[Entity] with a mapped entity"
            )
        paths = attribute_paths(mapper)
        columns = [prop.key for prop in mapper.column_attrs]
        valid = _valid_names(mapper)
        entity_name = getattr(model, "__name__", "?")
        for name, fn in candidates.items():
            query = parse_derived_name(name, entity_name, list(paths), columns, valid)
            assert query is not None
            setattr(cls, name, _build(query, fn, cls.__name__, paths, mapper))

    async def run_derived(self, plan: _Plan, values: list[Any], load: Any = None) -> Any:
        """Run a derived query with ``values`` bound to its conditions in order."""
        query = plan.query
        joins = None if query.kind == "delete_by" else JoinPlan(self.model, self.mapper)
        args = iter(values)
        paths = iter(plan.paths)
        disjuncts: list[ColumnElement[bool]] = []
        for group in query.groups:
            conjuncts: list[ColumnElement[bool]] = []
            for cond in group:
                arity, build = _OPERATORS[cond.operator]
                operands = [next(args) for _ in range(arity)]
                conjuncts.append(
                    path_criterion(self.model, self.mapper, next(paths), build, operands, joins)
                )
            disjuncts.append(conjuncts[0] if len(conjuncts) == 1 else and_(*conjuncts))
        where = disjuncts[0] if len(disjuncts) == 1 else or_(*disjuncts)
        if joins is None:
            return await self._delete_where(where)
        session = self.db
        shown = self.view_options()
        if query.kind == "count_by":
            counting = joins.apply(select(func.count()).select_from(self.model))
            counting = counting.where(*self.visibility_criteria(), where)
            return int(await session.scalar(counting, execution_options=shown) or 0)
        if query.kind == "exists_by":
            probe = joins.apply(select(literal(1)).select_from(self.model))
            probe = probe.where(*self.exists_criteria(), where)
            return bool(await session.scalar(select(probe.exists()), execution_options=shown))
        sort = [f"-{attr}" if desc else attr for attr, desc in query.order]
        stmt = joins.apply(self.select()).where(where)
        stmt = stmt.order_by(*order_clauses(resolve_sort(self.model, self.mapper, sort)))
        if query.kind in ("find_by", "find_first_by"):
            stmt = stmt.limit(1)
        elif query.limit is not None:
            stmt = stmt.limit(query.limit)
        projection = None if plan.returns is None else plan.returns.get()
        if projection is not None:
            found = await self.project_statement(projection, stmt, load)
        else:
            found = await self.fetch_entities(stmt, load)
        if query.kind in ("find_by", "find_first_by"):
            return found[0] if found else None
        return found

    async def _delete_where(self, where: ColumnElement[bool]) -> int:
        criteria = [*self.visibility_criteria(), where]
        return await delete_where(self.db, self.mapper, criteria, soft=self.soft_deletes)
