"""Derived query methods: ``async def find_by_email_and_is_active(self, email, is_active): ...``

A method of a ``DbRepo[Entity]`` subclass whose body is a stub (``...`` or ``pass``, after an
optional docstring; see :mod:`~viveka_db.repository.derived_stubs`) and whose name follows
the grammar of :mod:`~viveka_db.repository.derived_grammar` is implemented from its name
when the class is created; a method with any other body is left alone, and a stub whose name
is no derived query is refused. Names are checked against the entity's mapped attributes
then, so a typo fails at import with a message listing the valid attributes (and, for a path
through a relationship, the related entity's). Arguments bind to the conditions in order.

An attribute may walk relationships (``author_username``, ``tags_name``, nested up to
:data:`~viveka_db.repository.paths.MAX_PATH_DEPTH`); see :mod:`~viveka_db.repository.paths`.

``find_by``/``find_first_by`` return the entity or ``None``, ``find_top_N_by`` and
``find_all_by`` a list, ``count_by`` an ``int``, ``exists_by`` a ``bool``. Finders take
``load=`` and ``lock=`` (a row lock on the entities found); a finder annotated to return a
dataclass, ``NamedTuple`` or Pydantic model (``-> list[TitleOnly]``) selects only that
class's columns and returns instances of it.
``delete_by`` is one ``DELETE ... WHERE`` (one ``UPDATE`` of ``deleted_at`` for a
soft-delete entity) returning the row count: no row is loaded, so ORM cascades and version
checks do not run (use the database's ``ON DELETE`` actions), and rows already gone simply
do not count. All honour the view's soft-delete visibility and run under ``@transactional``.
A value a column cannot hold (an id beyond its range) matches no row, as in ``find_by``.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.decorator.transactional import implicit_transactional
from viveka_db.errors import DerivedQueryError, UnknownFieldError
from viveka_db.repository.base import T, model_from_generic
from viveka_db.repository.bulk_delete import delete_where
from viveka_db.repository.column_types import equal_to, in_values, not_equal_to
from viveka_db.repository.derived_grammar import OPERATORS, DerivedQuery, parse_derived_name
from viveka_db.repository.derived_names import DERIVED_NAME as _SUBJECT
from viveka_db.repository.derived_stubs import check_stub_names, is_stub
from viveka_db.repository.loading import load_options
from viveka_db.repository.paths import AttributePath, JoinPlan, attribute_paths, path_criterion
from viveka_db.repository.projection import (
    Projection,
    ProjectionRepository,
    projection_for,
    projection_target,
)
from viveka_db.repository.row_locks import LockMode, check_lock, lockable
from viveka_db.repository.sorting import order_clauses, orderable_keys, resolve_sort

__all__ = ["DerivedQuery", "DerivedQueryRepository", "parse_derived_name"]


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
    params = [p for p in list(signature.parameters.values())[1:] if p.name not in _OPTIONS]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in params):
        raise DerivedQueryError(
            f"{owner}.{stub.__name__}: derived query methods take plain positional parameters "
            "(and optional keyword-only load= and lock=)"
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
        lock = check_lock(kwargs.pop("lock", None))
        if (load is not None or lock is not None) and plan.returns is None:
            raise TypeError(f"{stub.__name__}() reads no rows; it takes no load= or lock=")
        bound = positional.bind(self, *args, **kwargs)
        values = list(bound.arguments.values())[1:]
        return await self._run_derived(plan, values, load, lock)  # pyright: ignore[reportPrivateUsage]

    return lockable(implicit_transactional(derived))


_OPTIONS = frozenset({"load", "lock"})
"""Keyword-only options of every finder, never bound to a condition."""


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


def _path_hint(mapper: Mapper[Any], rest: str) -> str:
    """For a name that goes wrong inside a relationship path (``author_usrname``,
    ``autor_username``): the related entity and its attributes."""
    walked: list[str] = []
    current = mapper
    while True:  # the relationships the unparsed text walks, longest key first
        keys = sorted((rel.key for rel in current.relationships), key=len, reverse=True)
        step = next((key for key in keys if rest.startswith(key + "_")), None)
        if step is None:
            break
        walked.append(step)
        current = current.relationships[step].mapper
        rest = rest[len(step) + 1 :]
    if walked:
        path = ".".join(walked)
        return (
            f"; {mapper.class_.__name__}.{path} leads to {current.class_.__name__}, whose "
            f"attributes are: {_valid_names(current)}"
        )
    words = rest.split("_")
    for rel in current.relationships:
        typed = "_".join(words[: rel.key.count("_") + 1])
        if difflib.SequenceMatcher(None, typed, rel.key).ratio() >= 0.75 and typed != rel.key:
            return (
                f"; did you mean {rel.key!r}? {mapper.class_.__name__}.{rel.key} leads to "
                f"{rel.mapper.class_.__name__}, whose attributes are: {_valid_names(rel.mapper)}"
            )
    return ""


def _with_dialect(operator: str, dialect: Dialect | None) -> Callable[..., Any]:
    """The builder of ``operator``; comparisons with a value the column cannot hold (an id
    beyond its range) become "no row" / "every row" instead of a driver error."""
    if operator == "eq":
        return functools.partial(_bound, equal_to, dialect)
    if operator == "not":
        return functools.partial(_bound, not_equal_to, dialect)
    if operator in ("in", "not_in"):
        return functools.partial(_in_bound, OPERATORS[operator][1], dialect)
    return OPERATORS[operator][1]


def _in_bound(build: Callable[..., Any], dialect: Dialect | None, column: Any, values: Any) -> Any:
    return build(column, in_values(column, values, dialect))


def _bound(compare: Callable[..., Any], dialect: Dialect | None, column: Any, value: Any) -> Any:
    return compare(column, value, dialect)


def _derived_stubs(cls: type) -> dict[str, Any]:
    """The derived-name stubs of ``cls``: the most-derived definition of each name, of
    bases too (a generic base's stubs are implemented by its concrete subclasses)."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(
            (name, fn) for name, fn in vars(klass).items() if _SUBJECT.match(name) is not None
        )
    return {name: fn for name, fn in merged.items() if is_stub(fn)}


class DerivedQueryRepository(ProjectionRepository[T]):
    """Implements derived query methods of subclasses when they are created."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_stub_names(cls)
        candidates = _derived_stubs(cls)
        model = model_from_generic(cls)
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
        orderable = orderable_keys(mapper)
        valid = _valid_names(mapper)
        hint = functools.partial(_path_hint, mapper)
        for name, fn in candidates.items():
            query = parse_derived_name(
                name, mapper.class_.__name__, list(paths), orderable, valid, hint
            )
            assert query is not None
            setattr(cls, name, _build(query, fn, cls.__name__, paths, mapper))

    def _where(self, plan: _Plan, values: list[Any], joins: JoinPlan | None) -> ColumnElement[bool]:
        """The ``WHERE`` of ``plan`` with ``values`` bound to its conditions in order."""
        dialect = self._dialect()
        args = iter(values)
        paths = iter(plan.paths)
        disjuncts: list[ColumnElement[bool]] = []
        for group in plan.query.groups:
            conjuncts: list[ColumnElement[bool]] = []
            for cond in group:
                build = _with_dialect(cond.operator, dialect)
                operands = [next(args) for _ in range(cond.arity)]
                conjuncts.append(
                    path_criterion(self.model, self._mapper, next(paths), build, operands, joins)
                )
            disjuncts.append(conjuncts[0] if len(conjuncts) == 1 else and_(*conjuncts))
        return disjuncts[0] if len(disjuncts) == 1 else or_(*disjuncts)

    async def _run_derived(
        self, plan: _Plan, values: list[Any], load: Any = None, lock: LockMode | None = None
    ) -> Any:
        """Run a derived query with ``values`` bound to its conditions in order."""
        query = plan.query
        joins = None if query.kind == "delete_by" else JoinPlan(self.model, self._mapper)
        where = self._where(plan, values, joins)
        if joins is None:
            return await self._delete_where(where)
        session = self.db
        shown = self._view_options()
        if query.kind == "count_by":
            counting = joins.apply(select(func.count()).select_from(self.model))
            counting = counting.where(*self._visibility_criteria(), where)
            return int(await session.scalar(counting, execution_options=shown) or 0)
        if query.kind == "exists_by":
            probe = joins.apply(select(literal(1)).select_from(self.model))
            probe = probe.where(*self._exists_criteria(), where)
            return bool(await session.scalar(select(probe.exists()), execution_options=shown))
        sort = [f"-{attr}" if desc else attr for attr, desc in query.order]
        stmt = joins.apply(self.select()).where(where)
        stmt = stmt.order_by(*order_clauses(resolve_sort(self.model, self._mapper, sort)))
        if query.kind in ("find_by", "find_first_by"):
            stmt = stmt.limit(1)
        elif query.limit is not None:
            stmt = stmt.limit(query.limit)
        projection = None if plan.returns is None else plan.returns.get()
        if projection is not None:
            found = await self._project_statement(projection, stmt, load, lock)
        else:
            found = await self._fetch_entities(stmt, load, lock)
        if query.kind in ("find_by", "find_first_by"):
            return found[0] if found else None
        return found

    async def _delete_where(self, where: ColumnElement[bool]) -> int:
        criteria = [*self._visibility_criteria(), where]
        return await delete_where(self.db, self._mapper, criteria, soft=self._soft_deletes)
