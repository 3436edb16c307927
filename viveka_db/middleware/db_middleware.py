"""``DbMiddleware``: one session per HTTP request, committed before the response starts.

A pure ASGI middleware (not ``BaseHTTPMiddleware``, which runs the app in another task and
breaks context propagation, streaming and background tasks). The request's transaction is
committed when the app sends ``http.response.start``, *before* that message reaches the
client, so a client never sees a 2xx for a write that failed to commit: a failed commit is
answered with a 500 instead, and the app's own response is dropped. Exceptions and 5xx
responses roll back. The session is closed and the context reset on every path, including
client disconnects and cancellation. Websocket and lifespan scopes pass straight through.

``tenant_resolver`` and ``actor_resolver`` (sync or async callables of the ASGI scope) give
the request's tenant and actor; the app then runs inside ``with tenant(...):`` /
``with acting_as(...):``. A resolver that returns ``None`` leaves that value unset, so
tenant-scoped work of that request raises :class:`~viveka_db.NoTenantError`.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from viveka_db.context.db_context import current_task
from viveka_db.context.scope import TransactionScope
from viveka_db.dialects.translate import MAPPED_ERRORS, loggable
from viveka_db.middleware.read_your_writes import read_your_writes
from viveka_db.telemetry.transaction import request_span
from viveka_db.tenancy.context import acting_as, tenant
from viveka_db.transaction.implicit import REQUEST_BOUNDARY_ATTR
from viveka_db.transaction.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from sqlalchemy.ext.asyncio import AsyncEngine

    from viveka_db.middleware.types import ASGIApp, Message, Receive, Scope, Send
    from viveka_db.session.db_session import DatabaseSessionFactory

    Resolver = Callable[[Scope], Any]

__all__ = ["DbMiddleware"]

logger = logging.getLogger("viveka_db.middleware")

_ERROR_BODY = b"Internal Server Error"


class _CommitFailed(Exception):
    """Raised into the app after a failed commit was answered with a 500, to stop it."""


class DbMiddleware:
    """Open a session per HTTP request and commit or roll it back around the response.

    ``app.add_middleware(DbMiddleware, engine=engine)`` for a given engine, or with no
    argument to use the default data source. ``data_source`` picks a named one.
    ``rollback_status`` is the lowest status code that rolls back (default 500).
    ``tenant_resolver(scope)`` / ``actor_resolver(scope)`` (plain or ``async``) return the
    request's tenant id / actor, or ``None``; read them from a verified token, never from
    a value the client can choose freely.
    """

    def __init__(
        self,
        app: ASGIApp,
        engine: AsyncEngine | None = None,
        *,
        data_source: str | None = None,
        rollback_status: int = 500,
        read_only_methods: Iterable[str] = (),
        tenant_resolver: Resolver | None = None,
        actor_resolver: Resolver | None = None,
    ) -> None:
        for name, resolver in (
            ("tenant_resolver", tenant_resolver),
            ("actor_resolver", actor_resolver),
        ):
            if resolver is not None and not callable(resolver):
                raise TypeError(
                    f"{name} must be a callable taking the ASGI scope (sync or async), "
                    f"got {type(resolver).__name__}"
                )
        self.tenant_resolver = tenant_resolver
        self.actor_resolver = actor_resolver
        self.read_only_methods = frozenset(method.upper() for method in read_only_methods)
        self.app = app
        self._engine = engine
        self._data_source = data_source
        self._factory: DatabaseSessionFactory | None = None
        self.rollback_status = rollback_status

    def _resolve_factory(self) -> DatabaseSessionFactory:
        """Find the data source at the first request (start-up may initialise it late)."""
        from viveka_db.session.db_session import DatabaseSessionFactory

        factory = self._factory
        if factory is None or not factory.active:  # first request, or re-initialised since
            if self._engine is not None:
                factory = DatabaseSessionFactory.for_engine(self._engine)
                if factory is None:
                    raise RuntimeError(
                        "DbMiddleware was given an engine that no DatabaseSessionFactory owns; "
                        "pass DatabaseSessionFactory.get_instance().engine, or no engine at all"
                    )
            else:
                factory = DatabaseSessionFactory.get_instance(self._data_source)
            self._factory = factory
        return factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        if self.tenant_resolver is None and self.actor_resolver is None:
            await self._handle(scope, receive, send)
            return
        with ExitStack() as stack:
            tid = await _resolve(self.tenant_resolver, scope)
            if tid is not None:
                stack.enter_context(tenant(tid))
            actor = await _resolve(self.actor_resolver, scope)
            if actor is not None:
                stack.enter_context(acting_as(actor))
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        factory = self._resolve_factory()
        send, floors_done = read_your_writes(factory, scope, send)  # read-your-writes token
        read_only = scope["method"] in self.read_only_methods
        span = request_span(scope, data_source=factory.data_source, read_only=read_only).start()
        uow = UnitOfWork(
            TransactionScope(
                factory, data_source=factory.data_source, owner=current_task(), read_only=read_only
            ),
            name=f"{scope['method']} {scope.get('path', '')}",
            span=span,
        )
        error: BaseException | None = None
        rollback_status = self.rollback_status
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start" and not uow.scope.hooks.completed:
                try:
                    with MAPPED_ERRORS:
                        await _end_transaction(uow, message["status"], rollback_status)
                except Exception as exc:  # mapped
                    replaced = True
                    await _send_error(send)
                    raise _CommitFailed from exc
            await send(message)

        try:
            await uow.enter()  # waits only while a test shares its connection
            await self.app(scope, receive, send_wrapper)
        except _CommitFailed as failure:
            error = failure.__cause__
            logger.error(
                "the request's transaction did not commit; answered 500 instead of the "
                "app's response",
                exc_info=loggable(failure.__cause__),  # mapped, without the driver's values
            )
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                await uow.release()  # rolls back first if the response never started
            finally:
                span.finish(error)
                floors_done()


async def _resolve(resolver: Resolver | None, scope: Scope) -> Any:
    if resolver is None:
        return None
    value = resolver(scope)
    if inspect.isawaitable(value):
        value = await value
    return value


setattr(DbMiddleware, REQUEST_BOUNDARY_ATTR, True)  # start-up checks look for it


async def _end_transaction(uow: UnitOfWork, status: int, rollback_status: int) -> None:
    """Commit or roll back the request's transaction as the response ``status`` starts.

    Raises when the client must not get the app's response: the commit failed, or the
    transaction was marked rollback-only (an inner failure the app swallowed) while the
    status claims success. An error status is already honest, so it is sent as it is.
    """
    if status >= rollback_status or (uow.scope.hooks.rollback_only and status >= 400):
        await uow.rollback()
    else:
        await uow.commit()  # raises UnexpectedRollbackError when rollback-only


async def _send_error(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_ERROR_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _ERROR_BODY, "more_body": False})
