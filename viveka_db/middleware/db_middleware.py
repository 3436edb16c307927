"""``DbMiddleware``: one session per HTTP request, committed before the response starts.

A pure ASGI middleware (not ``BaseHTTPMiddleware``, which runs the app in another task and
breaks context propagation, streaming and background tasks). The request's transaction is
committed when the app sends ``http.response.start``, *before* that message reaches the
client, so a client never sees a 2xx for a write that failed to commit: a failed commit is
answered with a 500 instead, and the app's own response is dropped. Exceptions and 5xx
responses roll back. The session is closed and the context reset on every path, including
client disconnects and cancellation. Websocket and lifespan scopes pass straight through.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from viveka_db.context.db_context import current_task, scope_var
from viveka_db.errors import UnexpectedRollbackError
from viveka_db.replicas.consistency import read_your_writes
from viveka_db.transaction.scope import TransactionScope

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, MutableMapping

    from sqlalchemy.ext.asyncio import AsyncEngine

    from viveka_db.session.db_session import DatabaseSessionFactory

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["DbMiddleware"]

logger = logging.getLogger("viveka_db.middleware")

_ERROR_BODY = b"Internal Server Error"


class _CommitFailed(Exception):
    """Raised into the app after a failed commit was answered with a 500, to stop it."""


class DbMiddleware:
    """Open a session per HTTP request and commit or roll it back around the response.

    ``app.add_middleware(DbMiddleware, engine=engine)`` as in the original README, or with
    no argument to use the default data source. ``data_source`` picks a named one.
    ``rollback_status`` is the lowest status code that rolls back (default 500).
    """

    def __init__(
        self,
        app: ASGIApp,
        engine: AsyncEngine | None = None,
        *,
        data_source: str | None = None,
        rollback_status: int = 500,
        read_only_methods: Iterable[str] = (),
    ) -> None:
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

        factory = self._resolve_factory()
        data_source = factory.data_source
        send, floors_done = read_your_writes(factory, scope, send)  # replicas (issue 12)
        tx = TransactionScope(
            factory,
            data_source=data_source,
            owner=current_task(),
            read_only=scope["method"] in self.read_only_methods,
        )
        var = scope_var(data_source)
        token = var.set(tx)
        rollback_status = self.rollback_status
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start" and not tx.finished:
                try:
                    await _end_transaction(tx, message["status"], rollback_status)
                except Exception as exc:
                    replaced = True
                    await _send_error(send)
                    raise _CommitFailed from exc
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except _CommitFailed as failure:
            logger.error(
                "the request's transaction did not commit; answered 500 instead of the "
                "app's response",
                exc_info=failure.__cause__,
            )
        except BaseException:
            await tx.rollback()
            raise
        finally:
            try:
                await tx.close()
            finally:
                var.reset(token)
                floors_done()


async def _end_transaction(tx: TransactionScope, status: int, rollback_status: int) -> None:
    """Commit or roll back the request's transaction as the response ``status`` starts.

    Raises when the client must not get the app's response: the commit failed, or the
    transaction was marked rollback-only (an inner failure the app swallowed) while the
    status claims success. An error status is already honest, so it is sent as it is.
    """
    try:
        if status >= rollback_status:
            await tx.rollback()
        elif tx.rollback_only:
            await tx.rollback()
            if status < 400:
                raise UnexpectedRollbackError(
                    "the request's transaction was rolled back because an inner transactional "
                    "call failed and marked it rollback-only (the app swallowed that exception)"
                )
        else:
            await tx.commit()  # rolls back itself if COMMIT fails
            await tx.run_after_commit()
    finally:
        tx.finished = True


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
