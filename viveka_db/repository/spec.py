"""Specifications: conditions on an entity built from small parts and combined.

.. code-block:: python

    adults_named_a = Spec.eq(User.name, "a") & Spec.gte(User.age, 18)
    either = adults_named_a | ~Spec.is_null(User.email)
    page = await users.get_page(query=either)

A :class:`Spec` is a value: build it anywhere (a service, the filter dependency of the
FastAPI integration), combine it with ``&``, ``|`` and ``~``, and pass it as ``query=`` to
any repository read (``all``, ``first``, ``count``, ``get_all``, ``get_page``,
``get_slice``, ``stream``, ``project``, ``count_grouped_by``). The repository turns it
into ``WHERE`` criteria on its own ``SELECT``, so soft-delete and the other criteria of
the repository's view still apply.

A field is a mapped attribute (``User.name``) or a dotted path from the repository's
entity (``"author.username"``, ``"tags.name"``). Every relationship step of a path is a
correlated ``EXISTS`` (``has()``/``any()``), never a join: an article with three matching
tags is still one row, and counts and pages are exact. Each operator means what the
SQLAlchemy operator of the same name means (``ne`` is SQL ``!=``, which never matches
``NULL``; ``eq(field, None)`` is ``IS NULL``); values are always bound parameters.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, false, not_, or_, true
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.errors import UnknownFieldError
from viveka_db.repository.base import T
from viveka_db.repository.field_paths import resolve_field_path
from viveka_db.repository.paths import path_criterion

__all__ = ["OPERATORS", "Spec"]

V = TypeVar("V")

Build = Callable[[Any, Any], ColumnElement[bool]]


def _is_null(column: Any, wanted: Any) -> ColumnElement[bool]:
    return typing.cast("ColumnElement[bool]", column.is_(None) if wanted else column.is_not(None))


OPERATORS: dict[str, Build] = {
    "eq": lambda column, value: column == value,
    "ne": lambda column, value: column != value,
    "lt": lambda column, value: column < value,
    "lte": lambda column, value: column <= value,
    "gt": lambda column, value: column > value,
    "gte": lambda column, value: column >= value,
    "in": lambda column, values: column.in_(values if isinstance(values, Select) else list(values)),
    "like": lambda column, pattern: column.like(pattern),
    "ilike": lambda column, pattern: column.ilike(pattern),
    "is_null": _is_null,
}
"""Every comparison a :class:`Spec` (and so the filter dependency) knows, by name."""

_COMBINATORS = ("and", "or", "not", "where")


class Spec(Generic[T]):
    """A condition on entities of ``T``; combine with ``&``, ``|``, ``~``.

    Build them with the class methods (:meth:`eq`, :meth:`ne`, :meth:`lt`, :meth:`lte`,
    :meth:`gt`, :meth:`gte`, :meth:`in_`, :meth:`like`, :meth:`ilike`, :meth:`is_null`,
    :meth:`where`, :meth:`all_of`, :meth:`any_of`) and pass them as ``query=`` to a
    repository. ``criterion(Entity)`` gives the SQLAlchemy clause.
    """

    __slots__ = ("_field", "_op", "_parts", "_value")

    def __init__(
        self, op: str, field: object = None, value: object = None, parts: tuple[Any, ...] = ()
    ) -> None:
        if op not in OPERATORS and op not in _COMBINATORS:
            raise ValueError(
                f"unknown specification operator {op!r}; valid: {', '.join(OPERATORS)}"
            )
        if op in OPERATORS:
            _check_field(field)
        self._op = op
        self._field = field
        self._value = value
        self._parts: tuple[Spec[Any], ...] = parts

    # -- building ------------------------------------------------------------------
    @classmethod
    def eq(cls, field: QueryableAttribute[V] | str, value: V | None) -> Spec[Any]:
        """``field = value`` (``None``: ``IS NULL``)."""
        return cls("eq", field, value)

    @classmethod
    def ne(cls, field: QueryableAttribute[V] | str, value: V | None) -> Spec[Any]:
        """``field != value`` (SQL: rows where ``field`` is ``NULL`` do not match)."""
        return cls("ne", field, value)

    @classmethod
    def lt(cls, field: QueryableAttribute[V] | str, value: V) -> Spec[Any]:
        """``field < value``."""
        return cls("lt", field, value)

    @classmethod
    def lte(cls, field: QueryableAttribute[V] | str, value: V) -> Spec[Any]:
        """``field <= value``."""
        return cls("lte", field, value)

    @classmethod
    def gt(cls, field: QueryableAttribute[V] | str, value: V) -> Spec[Any]:
        """``field > value``."""
        return cls("gt", field, value)

    @classmethod
    def gte(cls, field: QueryableAttribute[V] | str, value: V) -> Spec[Any]:
        """``field >= value``."""
        return cls("gte", field, value)

    @classmethod
    def in_(
        cls, field: QueryableAttribute[V] | str, values: Iterable[V] | Select[Any]
    ) -> Spec[Any]:
        """``field IN (values)``: a collection (empty: matches nothing) or a subquery."""
        return cls("in", field, values if isinstance(values, Select) else tuple(values))

    @classmethod
    def like(cls, field: QueryableAttribute[str] | str, pattern: str) -> Spec[Any]:
        """``field LIKE pattern`` (the caller writes the ``%``)."""
        return cls("like", field, pattern)

    @classmethod
    def ilike(cls, field: QueryableAttribute[str] | str, pattern: str) -> Spec[Any]:
        """``field LIKE pattern``, case-insensitive on every database."""
        return cls("ilike", field, pattern)

    @classmethod
    def is_null(cls, field: QueryableAttribute[Any] | str, is_null: bool = True) -> Spec[Any]:
        """``field IS NULL`` (``is_null=False``: ``IS NOT NULL``)."""
        return cls("is_null", field, bool(is_null))

    @classmethod
    def where(cls, *clauses: ColumnElement[bool]) -> Spec[Any]:
        """Any SQLAlchemy criteria, as a specification (all of them must hold)."""
        return cls("where", value=and_(*clauses) if clauses else true())

    @classmethod
    def all_of(cls, *specs: Spec[T]) -> Spec[T]:
        """Every one of ``specs`` holds (none given: every row)."""
        return cls("and", parts=specs)

    @classmethod
    def any_of(cls, *specs: Spec[T]) -> Spec[T]:
        """At least one of ``specs`` holds (none given: no row)."""
        return cls("or", parts=specs)

    def __and__(self, other: Spec[T]) -> Spec[T]:
        return Spec("and", parts=(*self._flat("and"), *_checked(other, "&")._flat("and")))

    def __or__(self, other: Spec[T]) -> Spec[T]:
        return Spec("or", parts=(*self._flat("or"), *_checked(other, "|")._flat("or")))

    def _flat(self, op: str) -> tuple[Spec[Any], ...]:
        """``a & b & c`` is one ``AND`` of three, not ``AND(AND(a, b), c)``."""
        return self._parts if self._op == op and type(self) is Spec else (self,)

    def __invert__(self) -> Spec[T]:
        return Spec("not", parts=(self,))

    # -- using -----------------------------------------------------------------------
    def criterion(self, entity: type[Any]) -> ColumnElement[bool]:
        """The ``WHERE`` clause of this specification for rows of ``entity``."""
        mapper = typing.cast("Mapper[Any]", sa_inspect(entity))
        return self._criterion(entity, mapper)

    def _criterion(self, entity: type[Any], mapper: Mapper[Any]) -> ColumnElement[bool]:
        op = self._op
        if op == "where":
            return typing.cast("ColumnElement[bool]", self._value)
        if op == "not":
            return not_(self._parts[0]._criterion(entity, mapper))
        if op in ("and", "or"):
            clauses = [part._criterion(entity, mapper) for part in self._parts]
            if not clauses:
                return true() if op == "and" else false()
            return and_(*clauses) if op == "and" else or_(*clauses)
        build = OPERATORS[op]
        field = self._field
        if isinstance(field, str):
            path = resolve_field_path(entity, field).path
            return path_criterion(entity, mapper, path, build, (self._value,))
        return build(_own_attribute(entity, mapper, field), self._value)

    def __clause_element__(self) -> ColumnElement[bool]:
        """Lets ``select(User).where(spec)`` work for specs built from attributes."""
        root = self._root()
        if root is None:
            raise TypeError(
                "this specification names fields by path only; pass it as query= to a "
                "repository, or use spec.criterion(Entity)"
            )
        return self.criterion(root)

    def _root(self) -> type[Any] | None:
        owner: object = getattr(self._field, "class_", None)  # a mapped attribute's entity
        if isinstance(owner, type):
            return owner
        for part in self._parts:
            found = part._root()
            if found is not None:
                return found
        return None

    def __repr__(self) -> str:
        if self._op in ("and", "or"):
            joiner = " & " if self._op == "and" else " | "
            return "(" + joiner.join(repr(p) for p in self._parts) + ")"
        if self._op == "not":
            return f"~{self._parts[0]!r}"
        if self._op == "where":
            return f"Spec.where({self._value})"
        field = self._field if isinstance(self._field, str) else str(self._field)
        return f"Spec.{self._op}({field!s}, ...)"  # values stay out of reprs and logs


def _checked(other: object, symbol: str) -> Spec[Any]:
    if not isinstance(other, Spec):
        raise TypeError(f"Spec {symbol} needs another Spec, got {type(other).__name__}")
    return other  # pyright: ignore[reportUnknownVariableType]


def _check_field(field: object) -> None:
    if isinstance(field, str | QueryableAttribute):
        return
    raise TypeError(
        "a specification's field is a mapped attribute (User.name) or a dotted path "
        f'("author.username"), got {type(field).__name__}'
    )


def _own_attribute(entity: type[Any], mapper: Mapper[Any], field: Any) -> Any:
    owner: Any = field.class_
    if isinstance(owner, type) and issubclass(entity, owner) and field.key in mapper.column_attrs:
        return field
    valid = [prop.key for prop in mapper.column_attrs]
    raise UnknownFieldError(
        entity,
        f"{getattr(owner, '__name__', owner)}.{field.key} (a field of another entity: name it "
        'by a path such as "author.username")',
        valid,
    )
