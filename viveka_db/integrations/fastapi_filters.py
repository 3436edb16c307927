"""Filters from query parameters: ``filters_for(Entity, allow=...)``, a FastAPI dependency.

.. code-block:: python

    ArticleFilters = filters_for(
        Article,
        allow={"title": ["like", "ilike"], "author.username": ["eq"], "created_at": ["gte", "lt"]},
    )

    @app.get("/articles")
    async def list_articles(
        params: PageDep, filters: Annotated[FilterParams[Article], Depends(ArticleFilters)]
    ) -> Page[ArticleRead]:
        return Page[ArticleRead].of(await articles.get_page(**params.kwargs(), query=filters))

``?title__like=%25async%25&author.username=ada&created_at__gte=2024-01-01T00:00:00Z``: a
parameter is ``field__operator`` (``field`` alone means ``eq``) for each allowed field and
operator, declared one by one with the column's type, so OpenAPI documents them and FastAPI
answers a bad value with 422. The result is a :class:`FilterParams`, a
:class:`~viveka_db.Spec` (every given filter must hold) that any repository read takes as
``query=``. A field through a relationship (``author.username``, ``tags.name``) is an
``EXISTS``, so an entity matching several related rows is listed once and totals are exact.

A parameter naming a field or operator that is not allowed is answered with 422 listing the
allowed filters. The unknown field itself is never named back (it may be a hidden column
such as ``password_hash``, and the answer must not confirm it exists); an unknown operator
of an allowed field is.
"""

# No ``from __future__ import annotations``: the dependency's signature is built from live
# annotation objects, and FastAPI must see them as they are.
import enum
import inspect
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, Field
from sqlalchemy import BigInteger, Integer, Numeric, SmallInteger, String
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute, Mapper

from viveka_db.repository.field_paths import FieldPath, resolve_field_path
from viveka_db.repository.field_paths import python_type as column_python_type
from viveka_db.repository.spec import OPERATORS, Spec

__all__ = ["MAX_IN_VALUES", "FilterParams", "filters_for"]

E = TypeVar("E")

MAX_IN_VALUES = 100
"""The most values one ``field__in`` parameter may carry."""

_ORDERED = ("eq", "ne", "lt", "lte", "gt", "gte", "in")
_SCALAR_TYPES: tuple[type, ...] = (
    bool,
    int,
    float,
    Decimal,
    str,
    datetime,
    date,
    time,
    timedelta,
    uuid.UUID,
)


class FilterParams(Spec[E]):
    """The filters one request asked for: a :class:`~viveka_db.Spec` (all must hold).

    Pass it as ``query=`` to ``get_page``, ``get_slice``, ``count``, ``stream``, ``all``,
    ...; combine it with other specifications (``filters & Spec.eq(...)``). ``values``
    maps each given parameter (``"title__like"``) to its parsed value.
    """

    __slots__ = ("values",)

    def __init__(self, parts: Sequence[Spec[Any]] = (), values: Mapping[str, Any] | None = None):
        super().__init__("and", parts=tuple(parts))
        self.values: dict[str, Any] = dict(values or {})


@dataclass(frozen=True, slots=True)
class _Param:
    alias: str
    field: str
    public: str
    op: str
    annotation: Any


def _value_type(entity: type[Any], path: FieldPath) -> type:
    column = path.column.columns[0]
    sa_type: Any = column.type
    python_type = column_python_type(sa_type)
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return python_type
    if python_type is datetime and getattr(sa_type, "timezone", False):
        return typing.cast(type, AwareDatetime)  # a naive time would be a guess: refused
    if python_type in _SCALAR_TYPES:
        return typing.cast(type, python_type)
    raise TypeError(
        f"cannot filter {entity.__name__} by {path.name!r}: its column type "
        f"({type(sa_type).__name__}) has no query-string form; allow columns of scalar types"
    )


def _operators_for(value_type: type, nullable: bool) -> tuple[str, ...]:
    if value_type is bool:
        ops: tuple[str, ...] = ("eq", "ne")
    elif value_type is str:
        ops = (*_ORDERED, "like", "ilike")
    else:
        ops = _ORDERED
    return (*ops, "is_null") if nullable else ops


def _limits(path: FieldPath, op: str, value_type: type) -> dict[str, Any]:
    """The column's own bounds (integer range, digits, length) as ``Query`` constraints."""
    sa_type: Any = path.column.columns[0].type
    if value_type is int and isinstance(sa_type, Integer):
        bits = (
            16
            if isinstance(sa_type, SmallInteger)
            else 64
            if isinstance(sa_type, BigInteger)
            else 32
        )
        return {"ge": -(2 ** (bits - 1)), "le": 2 ** (bits - 1) - 1}
    if value_type is Decimal and isinstance(sa_type, Numeric) and sa_type.precision:
        return {"max_digits": sa_type.precision, "decimal_places": sa_type.scale or 0}
    if (
        value_type is str
        and isinstance(sa_type, String)
        and sa_type.length
        and op not in ("like", "ilike")
    ):
        return {"max_length": sa_type.length}
    return {}


def _annotation(path: FieldPath, op: str, value_type: type, alias: str, label: str) -> Any:
    if op == "is_null":
        described = f"{label} is null (true) or not (false)"
        return Annotated[bool | None, Query(alias=alias, description=described)]
    limits = _limits(path, op, value_type)
    if op == "in":
        described = f"{label} is one of the values (repeat the parameter)"
        item: Any = Annotated[value_type, Field(**limits)] if limits else value_type
        return Annotated[
            list[item] | None,
            Query(alias=alias, max_length=MAX_IN_VALUES, description=described),
        ]
    words = {
        "eq": "equals",
        "ne": "differs from",
        "lt": "<",
        "lte": "<=",
        "gt": ">",
        "gte": ">=",
        "like": "LIKE (% and _ are wildcards)",
        "ilike": "LIKE, case-insensitive",
    }
    described = f"{label} {words[op]} the value"
    if "max_digits" in limits:  # a Decimal's own constraints: on the type, not the Optional
        digits: Any = Annotated[value_type, Field(**limits)]  # (FastAPI 0.110 refuses them)
        return Annotated[digits | None, Query(alias=alias, description=described)]
    return Annotated[value_type | None, Query(alias=alias, description=described, **limits)]


def _allowed(
    entity: type[Any],
    allow: Mapping[Any, Iterable[str] | None] | Iterable[Any],
    names: Mapping[str, str],
) -> list[_Param]:
    items: list[tuple[Any, Iterable[str] | None]]
    if isinstance(allow, Mapping):
        items = list(typing.cast("Mapping[Any, Iterable[str] | None]", allow).items())
    elif isinstance(allow, str):
        raise TypeError(f"allow= takes several fields (a set, list or dict), got {allow!r}")
    else:
        items = [(name, None) for name in allow]
    params: list[_Param] = []
    for raw_name, ops in items:
        name = raw_name.key if isinstance(raw_name, InstrumentedAttribute) else raw_name
        if not isinstance(name, str):
            raise TypeError(f"allow= names fields by path or attribute, got {raw_name!r}")
        path = resolve_field_path(entity, name)
        public = names.get(name, name)
        value_type = _value_type(entity, path)
        valid = _operators_for(value_type, path.nullable)
        wanted = (
            valid if ops is None else tuple(dict.fromkeys([ops] if isinstance(ops, str) else ops))
        )
        for op in wanted:
            if op not in OPERATORS:
                raise ValueError(f"unknown filter operator {op!r}; valid: {', '.join(OPERATORS)}")
            if op not in valid:
                raise ValueError(
                    f"operator {op!r} does not apply to {entity.__name__}.{name}; "
                    f"it takes: {', '.join(valid)}"
                )
            alias = public if op == "eq" else f"{public}__{op}"
            annotation = _annotation(path, op, value_type, alias, public)
            params.append(_Param(alias, name, public, op, annotation))
    if not params:
        raise ValueError("filters_for needs at least one allowed field")
    unknown = set(names) - {p.field for p in params}
    if unknown:
        raise ValueError(f"names= renames fields that allow= does not list: {sorted(unknown)}")
    publics = list(names.values())
    if len(set(publics)) != len(publics) or any("__" in n or not n for n in publics):
        raise ValueError("names= must give distinct, non-empty names without '__'")
    return params


def _describe(params: Sequence[_Param]) -> str:
    """The allowed query parameters, by name (``title, title__like, author.username``)."""
    return ", ".join(param.alias for param in params)


_route_params: dict[int, tuple[Any, frozenset[str]]] = {}
"""Per route (by id, checked by identity: routes are not hashable), its query parameters."""


def _declared_query_names(request: Request) -> frozenset[str]:
    """Every query parameter the matched route declares (its own and its dependencies')."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if route is None or dependant is None:
        return frozenset()
    cached = _route_params.get(id(route))
    if cached is not None and cached[0] is route:
        return cached[1]
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    _route_params[id(route)] = (route, frozenset(names))
    return frozenset(names)


class _Checker:
    """Finds query parameters that try to filter but name no allowed filter."""

    def __init__(self, entity: type[Any], params: Sequence[_Param]) -> None:
        mapper = typing.cast("Mapper[Any]", sa_inspect(entity))
        self.entity = entity
        self.attributes = {p.key for p in mapper.column_attrs} | set(mapper.relationships.keys())
        self.aliases = {p.alias for p in params}
        self.fields = {p.public for p in params}
        self.allowed = _describe(params)

    def errors(self, request: Request) -> list[dict[str, Any]]:
        declared = _declared_query_names(request)
        found: list[dict[str, Any]] = []
        for key in dict.fromkeys(request.query_params.keys()):
            if key in self.aliases or key in declared or not self._is_filter(key):
                continue
            found.append(self._error(key))
        return found

    def _is_filter(self, key: str) -> bool:
        return "__" in key or "." in key or key in self.attributes

    def _error(self, key: str) -> dict[str, Any]:
        field, _, op = key.rpartition("__") if "__" in key else (key, "", "")
        loc: tuple[str, ...]
        if field in self.fields:
            hint = f" (write {field}=value for eq)" if op == "eq" else ""
            msg = f"filter {field} does not take the operator {op or 'eq'!r}{hint}"
            error_type, loc = "filter_operator", ("query", key)
        else:  # never echoed: it may name a column the API hides
            msg = "a query parameter names a field that does not exist or cannot be filtered"
            error_type, loc = "filter_field", ("query",)
        return {
            "type": error_type,
            "loc": loc,
            "msg": f"{msg}; the allowed filters are: {self.allowed}",
        }


def filters_for(
    entity: type[E],
    allow: Mapping[Any, Iterable[str] | None] | Iterable[Any],
    *,
    names: Mapping[str, str] | None = None,
) -> Callable[..., Any]:
    """A FastAPI dependency reading the filters ``allow`` permits on ``entity``.

    ``allow`` maps each field (a column name, a dotted path through relationships such as
    ``"author.username"``, or a mapped attribute) to the operators it takes (``eq``,
    ``ne``, ``lt``, ``lte``, ``gt``, ``gte``, ``in``, ``like``, ``ilike``, ``is_null``),
    or is a set of fields, each taking every operator that suits its type (``like`` and
    ``ilike`` for strings, ``is_null`` where the value can be missing). Everything is
    checked here, when the application starts. Use it as ``Depends(filters_for(...))``
    with the annotation ``FilterParams[Entity]``.

    ``names`` gives a field its public name in the URL (``{"tags.name": "tag"}``: ``?tag=``,
    ``?tag__in=``), for an API whose parameters are fixed or that should not show its schema.
    """
    params = _allowed(entity, allow, names or {})
    checker = _Checker(entity, params)

    async def dependency(request: Request, **given: Any) -> FilterParams[E]:
        errors = checker.errors(request)
        if errors:
            raise RequestValidationError(errors)
        parts: list[Spec[Any]] = []
        values: dict[str, Any] = {}
        for index, param in enumerate(params):
            value = given.get(f"f{index}")
            if value is None:
                continue
            values[param.alias] = value
            parts.append(Spec(param.op, param.field, value))
        return FilterParams(parts, values)

    parameters = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        *(
            inspect.Parameter(
                f"f{index}",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=param.annotation,
            )
            for index, param in enumerate(params)
        ),
    ]
    dependency.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    dependency.__name__ = f"filters_for_{entity.__name__}"
    dependency.__qualname__ = dependency.__name__
    return dependency
