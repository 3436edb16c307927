"""``@query("SELECT ... :name ...")``: hand-written SQL on a repository method.

The method's arguments are bound to the statement's ``:name`` parameters by the driver
(``text()`` bind parameters), never formatted into the SQL, so a value such as
``"x' OR 1=1 --"`` is just a value. Every ``:name`` must be a parameter of the method;
this is checked at decoration time. A list or tuple argument binds as an expanding
``IN (...)`` parameter.

What comes back (``returns=``):

* ``"entities"``: a list of entities (``model=``, or the repository's entity); the SQL
  must select the entity's columns (``SELECT * FROM users ...``);
* ``"entity"``: the first such entity or ``None``;
* ``"rows"``: a list of ``Row`` (attribute and index access);
* ``"scalar"``: the first column of the first row, or ``None``;
* ``"rowcount"``: the number of rows an ``UPDATE``/``DELETE`` touched.

Without ``returns=`` it follows the return annotation: ``list[Entity]`` -> entities,
``Entity | None`` -> entity, ``int`` on a non-``SELECT`` -> rowcount; otherwise rows for
a ``SELECT`` and rowcount for anything else. The method runs under ``@transactional``
(joining the current transaction or running in its own); its body is not executed.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, ParamSpec, TypeVar

from sqlalchemy import bindparam, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import BindParameter, TextClause

from viveka_db.context.data_source import data_source_of
from viveka_db.context.db_context import current_session
from viveka_db.decorator.transactional import implicit_transactional
from viveka_db.errors import EntityDefinitionError

__all__ = ["query"]

P = ParamSpec("P")
R = TypeVar("R")
Returns = Literal["entities", "entity", "rows", "scalar", "rowcount"]
_RETURNS = typing.get_args(Returns)


def query(
    sql: str, *, model: type[Any] | None = None, returns: Returns | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Implement the decorated ``async def`` with ``sql`` and its named bind parameters."""
    given = typing.cast(object, sql)
    if not isinstance(given, str) or not given.strip():
        raise TypeError(f'@query needs the SQL text (@query("SELECT ...")), got {given!r}')
    if returns is not None and returns not in _RETURNS:
        raise ValueError(f"@query returns= must be one of {_RETURNS}, got {returns!r}")
    statement = text(sql)
    binds = set(statement.compile().params)
    is_select = sql.lstrip().split(None, 1)[0].lower() in ("select", "with", "values")

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@query decorates `async def` functions; {fn.__qualname__} is not one")
        signature = inspect.signature(fn)
        names = list(signature.parameters)
        is_method = bool(names) and names[0] in ("self", "cls")
        params = names[1:] if is_method else names
        missing = binds - set(params)
        if missing:
            raise TypeError(
                f"{fn.__qualname__}: the SQL uses :{', :'.join(sorted(missing))} but the "
                f"function has no parameter of that name (it has: {', '.join(params) or 'none'})"
            )
        mode: list[str | None] = [returns]

        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            owner = bound.args[0] if is_method and bound.args else None
            values = {k: v for k, v in bound.arguments.items() if k in binds}
            entity = model if model is not None else getattr(owner, "model", None)
            chosen = mode[0]
            if chosen is None:
                chosen = mode[0] = _infer(fn, entity, is_select)
            source = data_source_of(owner)
            session = current_session(source)
            return typing.cast(R, await _execute(session, statement, values, chosen, entity, fn))

        return implicit_transactional(run)

    return decorate


def _infer(fn: Callable[..., Any], entity: type[Any] | None, is_select: bool) -> str:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations: fall back to the statement kind
        hint = None
    if entity is not None and hint is not None:
        if hint is entity:
            return "entity"
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType) and entity in args:
            return "entity"
        if origin is not None and args and args[0] is entity:
            return "entities"
    if hint is int and not is_select:
        return "rowcount"
    return "rows" if is_select else "rowcount"


async def _execute(
    session: AsyncSession,
    statement: TextClause,
    values: dict[str, Any],
    mode: str,
    entity: type[Any] | None,
    fn: Callable[..., Any],
) -> Any:
    expanding: list[BindParameter[Any]] = [
        bindparam(k, expanding=True) for k, v in values.items() if isinstance(v, list | tuple)
    ]
    stmt = statement.bindparams(*expanding) if expanding else statement
    if mode in ("entities", "entity"):
        if entity is None or not isinstance(sa_inspect(entity, raiseerr=False), Mapper):
            raise EntityDefinitionError(
                f"{fn.__qualname__}: @query returning entities needs model=Entity "
                "(or a repository method, whose entity is used)"
            )
        result = await session.scalars(select(entity).from_statement(stmt), values)
        return list(result.all()) if mode == "entities" else result.first()
    result_rows = await session.execute(stmt, values)
    if mode == "rowcount":
        return int(getattr(result_rows, "rowcount", -1))
    if mode == "scalar":
        return result_rows.scalar()
    return list(result_rows.all())
