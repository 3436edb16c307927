"""FastAPI integration: a lifespan that owns the data source, and a session dependency.

.. code-block:: python

    from fastapi import FastAPI
    from viveka_db import DbMiddleware
    from viveka_db.integrations.fastapi import SessionDep, viveka_lifespan

    app = FastAPI(lifespan=viveka_lifespan("config.ini"))
    app.add_middleware(DbMiddleware)

    @app.get("/users/{user_id}")
    async def read_user(user_id: int, session: SessionDep) -> dict[str, str]: ...

FastAPI runs the exit code of a dependency with ``yield`` *after the response has been sent*
unless the dependency is declared with ``Depends(..., scope="function")``. A session
dependency that commits there would let the client see a 2xx for a write that then failed
to commit, so :data:`SessionDep` uses ``scope="function"``: the commit happens when the
endpoint returns, before the response goes out. With ``DbMiddleware`` installed the
dependency returns the middleware's session and the middleware commits before the response
starts, so either way a failed commit becomes a 500.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

try:
    from fastapi import Depends
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'viveka_db.integrations.fastapi needs FastAPI: pip install "viveka-db[fastapi]"'
    ) from exc

from sqlalchemy.ext.asyncio import AsyncSession

from viveka_db.config.sources import ConfigSource
from viveka_db.context.db_context import DEFAULT
from viveka_db.integrations.fastapi_paging import (
    Page,
    PageDep,
    PageParams,
    Slice,
    SliceDep,
    SliceParams,
)
from viveka_db.integrations.http_errors import (
    DEFAULT_RETRY_AFTER,
    HANDLED_ERRORS,
    ErrorLog,
    http_error_for,
)
from viveka_db.integrations.request_session import unit_of_work
from viveka_db.integrations.wiring import warn_without_request_boundary
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.transaction.implicit import REQUEST_BOUNDARY_ATTR

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

__all__ = [
    "Page",
    "PageDep",
    "PageParams",
    "SessionDep",
    "Slice",
    "SliceDep",
    "SliceParams",
    "add_exception_handlers",
    "get_session",
    "session_dependency",
    "viveka_database",
    "viveka_lifespan",
]


@asynccontextmanager
async def viveka_database(
    config: ConfigSource = None,
    *,
    data_source: str = DEFAULT,
    create_tables: bool = False,
    **engine_options: Any,
) -> AsyncGenerator[DatabaseSessionFactory, None]:
    """Initialise ``data_source`` (and, for the default one, the cache) and dispose it on exit.

    ``config`` is any config source of :class:`DatabaseSessionFactory` (``None``:
    ``$VIVEKA_CONFIG``, ``./config.ini`` or the embedded default). Unless
    ``[database] verify_on_startup = false``, the data source is verified first
    (:meth:`DatabaseSessionFactory.verify`): an unreachable server, a refused login or a
    missing database fails the start-up with a ``ConfigurationError`` naming the cause.
    ``create_tables=True`` creates missing tables of every imported entity at start-up (handy
    in development; use migrations in production). Compose it inside your own lifespan with
    ``async with``.
    """
    factory = DatabaseSessionFactory(config, data_source=data_source, **engine_options)
    try:
        if factory.settings.database.verify_on_startup:
            await factory.verify()
        if create_tables:
            await factory.create_all()
        yield factory
    finally:
        await factory.dispose()
        if data_source == DEFAULT:
            from viveka_db.cache.setup import close_cache

            await close_cache()


def viveka_lifespan(
    config: ConfigSource = None,
    *,
    data_source: str = DEFAULT,
    create_tables: bool = False,
    **engine_options: Any,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A ``lifespan=`` for ``FastAPI(...)`` (or Starlette) running :func:`viveka_database`.

    At start-up it also warns, once, when the app has HTTP routes but neither
    ``DbMiddleware`` nor a route depending on :data:`SessionDep` (then each repository call
    in a request is a transaction of its own).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        async with viveka_database(
            config, data_source=data_source, create_tables=create_tables, **engine_options
        ):
            warn_without_request_boundary(app)
            yield

    return lifespan


async def get_session() -> AsyncIterator[AsyncSession]:
    """The request's session: ``DbMiddleware``'s when present, otherwise one owned here.

    Declare it through :data:`SessionDep` (or ``Depends(get_session, scope="function")``)
    so that, without the middleware, the commit happens before the response is sent.
    """
    async with unit_of_work(DEFAULT) as session:
        yield session


setattr(get_session, REQUEST_BOUNDARY_ATTR, True)


def session_dependency(data_source: str) -> Callable[[], AsyncIterator[AsyncSession]]:
    """A ``get_session`` for a named data source.

    Declare it as ``Depends(session_dependency("reports"), scope="function")`` so that the
    commit happens before the response is sent.
    """

    async def get_named_session() -> AsyncIterator[AsyncSession]:
        async with unit_of_work(data_source) as session:
            yield session

    get_named_session.__name__ = f"get_session_{data_source}"
    setattr(get_named_session, REQUEST_BOUNDARY_ATTR, True)
    return get_named_session


def _function_scoped(dependency: Callable[..., Any]) -> Any:
    """``Depends(dependency, scope="function")`` where this FastAPI version supports it."""
    if "scope" in inspect.signature(Depends).parameters:
        return Depends(dependency, scope="function")
    return Depends(dependency)  # pragma: no cover - old FastAPI: exit runs after the response


SessionDep = Annotated[AsyncSession, _function_scoped(get_session)]
"""``session: SessionDep`` in an endpoint: the request's session, committed before the response."""


def add_exception_handlers(app: FastAPI, *, retry_after: int = DEFAULT_RETRY_AFTER) -> None:
    """Answer framework errors with the HTTP status they mean and a JSON body.

    ``EntityNotFoundError`` 404; ``ConstraintViolationError`` 409 with ``constraint`` and
    ``columns`` (never the values); ``PaginationError``/``UnknownFieldError`` 422; pool
    exhausted, database unreachable, login refused or database missing 503 with
    ``Retry-After: retry_after`` (the cause logged on ``viveka_db.http``, once a minute per
    cause while it lasts);
    ``SchemaError`` (a missing table or column) 500 with a JSON body that names no table.
    Any other driver error stays a 500 (it is re-raised, so the server logs it as before).
    """
    from fastapi.responses import JSONResponse

    causes = ErrorLog()

    async def handle(request: Request, exc: Exception) -> Response:
        answer = http_error_for(exc, retry_after=retry_after)
        if answer is None:
            raise exc
        causes.log(answer)
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    for error in HANDLED_ERRORS:
        app.add_exception_handler(error, handle)
