"""Mapping driver errors to :mod:`viveka_db.errors` where they happen, and on demand.

:func:`install_error_translation` puts the mapping on an engine with SQLAlchemy's
``handle_error`` hook, so every statement, flush and COMMIT of that engine raises mapped
errors: repository methods, ``@transactional`` and ``DbMiddleware`` need no code of their
own for it, and the hook sees the failed statement's table, from which a constraint name
becomes its columns. :func:`translate_error` is the same mapping for an exception met
anywhere else (another engine, a boundary that wants to be sure): cheap on any exception,
and a no-op on one already mapped. :class:`~viveka_db.errors.mapped_errors` is the one
way code maps an error and raises it; :data:`MAPPED_ERRORS` and :func:`driver_errors` are
its two forms. Every boundary that catches a failure (the transaction boundaries, the bulk
and SQLite paths that talk to the driver directly) wraps its work in one, so the mapped
class, its chain and its message are the same wherever an error surfaces.
"""

from __future__ import annotations

import logging

from sqlalchemy import Table, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from viveka_db.dialects.base import Site
from viveka_db.dialects.registry import adapter_for, adapter_for_driver_error
from viveka_db.errors import DatabaseError, mapped_errors

__all__ = [
    "MAPPED_ERRORS",
    "driver_errors",
    "error_code",
    "install_error_translation",
    "loggable",
    "translate_driver_error",
    "translate_error",
]

logger = logging.getLogger("viveka_db.errors")


def translate_error(exc: BaseException, *, dialect: str | None = None) -> BaseException:
    """The mapped error for ``exc``, or ``exc`` itself when there is nothing to map.

    ``dialect`` (``"postgresql"``, ``"mariadb"``, ...) picks the adapter; without it the
    driver error's module decides. The mapped error's ``__cause__`` is the driver error,
    as when SQLAlchemy raises its own. Never raises.
    """
    if not isinstance(exc, sa_exc.DBAPIError) or isinstance(exc, DatabaseError):
        return exc
    try:
        adapter = adapter_for(dialect) if dialect else adapter_for_driver_error(exc.orig)
        mapped = adapter.map_error(exc)
    except Exception:  # a parser surprised by a new driver's message: keep the original
        logger.debug("could not map %r", type(exc), exc_info=True)
        return exc
    if mapped is None:
        return exc
    mapped.__cause__ = exc.orig
    mapped.__suppress_context__ = True
    return mapped.with_traceback(exc.__traceback__)


def translate_driver_error(
    exc: BaseException, dialect: Dialect, table: Table | None = None, *, nowait: bool = False
) -> BaseException:
    """:func:`translate_error` for a raw driver error from code that bypassed SQLAlchemy
    (the bulk ``COPY`` and multi-row ``INSERT`` paths), with the table it was writing;
    ``nowait``: the statement was asked not to wait for locks."""
    if not isinstance(exc, Exception) or isinstance(exc, sa_exc.SQLAlchemyError):
        return translate_error(exc, dialect=dialect.name)
    site = Site(table, writes_rows=True, nowait=nowait)
    return adapter_for(dialect).map_driver_error(exc, dialect, site)


def error_code(error: BaseException) -> str | None:
    """The database's own code for ``error`` (SQLSTATE, MySQL error number), read along its
    chain of causes (SQLAlchemy's wrapper, the adapted driver error), if a driver gives one."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return None
        for name in ("sqlstate", "pgcode"):
            code = getattr(seen, name, None)
            if isinstance(code, str) and code:
                return code
        args = getattr(seen, "args", ())
        if args and isinstance(args[0], int):
            return str(args[0])
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


MAPPED_ERRORS = mapped_errors(translate_error)
"""The construct for errors met through SQLAlchemy: one stateless instance the hot
boundaries reuse (a joined call enters it every time, so it allocates nothing)."""


def driver_errors(
    dialect: Dialect,
    table: Table | None = None,
    *,
    nowait: bool = False,
    only: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> mapped_errors:
    """The construct for code that talks to the driver past SQLAlchemy: its raw errors
    (of the ``only`` classes) mapped as ``dialect``'s, with the ``table`` being written
    and whether the statement asked for ``nowait``."""
    return mapped_errors(
        lambda exc: translate_driver_error(exc, dialect, table, nowait=nowait), only=only
    )


def loggable(exc: BaseException | None) -> BaseException | None:
    """``exc`` mapped, for ``logger.error(..., exc_info=loggable(exc))``.

    A mapped error's ``__cause__`` is the driver error, whose text often repeats the values
    (PostgreSQL's ``DETAIL: Key (email)=(...)``, MySQL's ``Duplicate entry '...'``); a log
    line prints the whole chain, so it gets a copy without the chain (same traceback).
    """
    if exc is None:
        return None
    mapped = translate_error(exc)
    if not isinstance(mapped, DatabaseError):
        return mapped
    copy = type(mapped).__new__(type(mapped), *mapped.args)
    copy.__dict__.update(vars(mapped))  # the same class and fields; the chain stays behind
    copy.__suppress_context__ = True
    return copy.with_traceback(mapped.__traceback__)


def install_error_translation(engine: AsyncEngine) -> None:
    """Raise mapped errors from every statement and transaction of ``engine`` (idempotent)."""
    target = engine.sync_engine
    if not event.contains(target, "handle_error", _on_error):
        event.listen(target, "handle_error", _on_error, retval=True)


def _on_error(context: ExceptionContext) -> BaseException | None:
    """SQLAlchemy raises the returned exception ``from`` the driver error."""
    error = context.sqlalchemy_exception
    if not isinstance(error, sa_exc.DBAPIError) or context.is_disconnect:
        return None
    try:
        return adapter_for(context.dialect).map_error(error, Site.of(context.execution_context))
    except Exception:
        logger.debug("could not map %r", type(error), exc_info=True)
        return None
