"""The grammar of derived query names, parsed against an entity's attribute names.

Grammar (snake case, Spring Data's)::

    subject    find_by | find_first_by | find_top_<N>_by | find_all_by
               | count_by | exists_by | delete_by
    condition  <attribute>[_<operator>]      joined by _and_ / _or_ (AND binds tighter)
    operator   not | greater_than | greater_than_equal | less_than | less_than_equal
               | between (2 args, inclusive) | like | not_like (caller supplies %)
               | in | not_in (1 iterable) | is_null | is_not_null (no args)
    order      _order_by_<attribute>[_asc|_desc][_and_<attribute>[_asc|_desc]...]
               (then the primary key; NULLs last ascending, first descending, as ``sort=``)

Free of SQLAlchemy: the attribute names come from the caller (paths through relationships
included), and the operators are plain functions of a column and values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from viveka_db.errors import DerivedQueryError
from viveka_db.repository.derived_names import DERIVED_NAME as _SUBJECT

__all__ = ["OPERATORS", "Condition", "DerivedQuery", "parse_derived_name"]


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


OPERATORS: dict[str, tuple[int, Callable[..., Any]]] = {
    # name: (arguments, build(column, *values) -> a SQL criterion)
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
_OPERATOR_NAMES = sorted((op for op in OPERATORS if op != "eq"), key=len, reverse=True)


@dataclass(frozen=True)
class Condition:
    attribute: str
    operator: str

    @property
    def arity(self) -> int:
        return OPERATORS[self.operator][0]


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
    hint: Callable[[str], str] | None = None,
) -> DerivedQuery | None:
    """Parse ``method``; ``None`` if it is not a derived-query name at all.

    ``attributes`` are the names a condition may use (paths through relationships
    included), ``order_attributes`` those ``_order_by_`` may use (default: the same) and
    ``valid`` how an error describes them; ``hint(rest)`` may add to an error about the
    unparsed ``rest`` (the attributes of a related entity the path walks to). Raises
    :class:`DerivedQueryError` naming the bad part and the valid attributes.
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
        extra = hint(name[pos:]) if hint is not None else ""
        return DerivedQueryError(
            f"derived query {method!r}: {what} at {name[pos:]!r}; {entity}'s attributes are: "
            f"{described}{extra}"
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
