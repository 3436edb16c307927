"""The one owner of the outermost transaction boundary.

Every place that *starts* a transaction (``@transactional`` and direct repository calls,
``DbMiddleware``, the FastAPI dependency, the ``db_session`` test fixture) goes through
:class:`UnitOfWork`; every place that *joins* one goes through :func:`join`. Nothing else
commits, rolls back, honours rollback-only, runs completion hooks, closes the session or
resets the context variable, so these rules cannot drift apart between callers:

- success commits, unless an inner call marked the transaction rollback-only: then it rolls
  back and raises :class:`~viveka_db.errors.UnexpectedRollbackError`;
- a failure rolls back (or commits, where ``no_rollback_for`` says so) and re-raises;
- a failed COMMIT is rolled back and raised, mapped to the error family of
  :mod:`viveka_db.errors`;
- after the outcome is final the hooks run: ``after_commit`` then ``after_completion
  ("committed")``, or ``after_rollback`` then ``after_completion("rolled_back")``; a hook
  that raises is logged and the others still run;
- the session is closed and the context reset on every path, cancellation included (the
  rollback and the close are shielded from it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import Token
from types import TracebackType
from typing import TypeVar

from viveka_db.context.completion import CompletionStatus
from viveka_db.context.db_context import current_task, scope_var
from viveka_db.context.scope import TransactionScope
from viveka_db.dialects.translate import MAPPED_ERRORS
from viveka_db.errors import TransactionTimeoutError, UnexpectedRollbackError
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.session.shared_connection import Turn
from viveka_db.telemetry.transaction import TransactionSpan
from viveka_db.transaction.definition import REQUIRED, TransactionDefinition

__all__ = ["UnitOfWork", "join", "with_timeout"]

R = TypeVar("R")


class UnitOfWork:
    """One outermost transaction: make its scope current, end it once, clean up always.

    Use it as ``async with UnitOfWork.open(...) as scope:`` (commit on success, roll back on
    an exception), through :meth:`run` (Spring's rollback rules of a definition), or step by
    step with :meth:`begin`, :meth:`commit` / :meth:`rollback` and :meth:`release` where the
    moment of the commit is not the end of the block (``DbMiddleware`` commits when the
    response starts and releases when the app returns).
    """

    __slots__ = ("_token", "_turn", "name", "scope", "span")

    def __init__(
        self, scope: TransactionScope, *, name: str = "", span: TransactionSpan | None = None
    ) -> None:
        self.scope = scope
        self.name = name
        self.span = span
        """The boundary's telemetry span, told the outcome (its owner starts and ends it)."""
        self._token: Token[TransactionScope | None] | None = None
        self._turn: Turn | None = None

    @classmethod
    def open(
        cls,
        data_source: str,
        *,
        read_only: bool = False,
        read_engine: bool | None = None,
        name: str = "",
        span: TransactionSpan | None = None,
    ) -> UnitOfWork:
        """A unit of work on a new, lazily opened session of ``data_source``, owned by this task."""
        factory = DatabaseSessionFactory.get_instance(data_source)
        scope = TransactionScope(
            factory,
            data_source=data_source,
            read_only=read_only,
            read_engine=read_engine,
            owner=current_task(),
        )
        return cls(scope, name=name, span=span)

    # -- steps ---------------------------------------------------------------------------

    async def enter(self) -> TransactionScope:
        """:meth:`begin`, after waiting for this boundary's turn on a test's shared connection.

        While the ``db_session`` fixture shares its connection, boundaries of different
        tasks take turns on it (see :mod:`viveka_db.session.shared_connection`).
        """
        factory = self.scope.factory
        shared = None if factory is None else factory.shared_connection
        if shared is not None and self._turn is None:
            self._turn = await shared.acquire()
        return self.begin()

    def begin(self) -> TransactionScope:
        """Make the scope the current one of its data source for this task (and its children).

        Owners that may run while a test shares its connection use :meth:`enter`.
        """
        self._token = scope_var(self.scope.data_source).set(self.scope)
        return self.scope

    async def commit(self, *, will_retry: Callable[[BaseException], bool] | None = None) -> None:
        """Commit and run the commit hooks; honour rollback-only.

        Raises :class:`UnexpectedRollbackError` (after rolling back) when an inner call marked
        the transaction rollback-only, and the mapped error when COMMIT itself fails (then
        the rollback hooks run, unless ``will_retry(error)`` says the call runs again).
        """
        scope = self.scope
        if scope.hooks.rollback_only:
            await self.rollback()
            raise UnexpectedRollbackError(
                f"{self.name or 'the transaction'} was rolled back because an inner "
                "transactional call failed and marked it rollback-only (the caller swallowed "
                "that exception)"
            )
        if scope.has_session:
            try:
                with MAPPED_ERRORS:
                    await scope.commit()  # rolls back by itself when COMMIT fails
            except BaseException as error:  # mapped
                if will_retry is not None and will_retry(error):
                    scope.hooks.discard()  # a serialization failure at COMMIT, retried
                await self._complete("rolled_back")
                raise
        await self._complete("committed")

    async def rollback(self, *, run_hooks: bool = True) -> None:
        """Roll back; ``run_hooks=False`` drops the hooks instead (an attempt to be retried).

        A no-op once the outcome was decided (a request whose response already started).
        """
        hooks = self.scope.hooks
        if hooks.completed:
            return
        await self.scope.rollback()
        if not run_hooks:
            hooks.discard()
        await self._complete("rolled_back")

    async def release(self) -> None:
        """Close the session and reset the context; roll back first if nothing ended the work."""
        scope = self.scope
        try:
            if not scope.hooks.completed:
                await self.rollback()
        finally:
            try:
                if scope.has_session:
                    await scope.close()
                else:
                    scope.hooks.completed = True
            finally:
                if self._token is not None:
                    scope_var(scope.data_source).reset(self._token)
                    self._token = None
                turn, self._turn = self._turn, None
                if turn is not None:
                    turn.release()

    async def _complete(self, status: CompletionStatus) -> None:
        hooks = self.scope.hooks
        if self.span is not None:
            marked = status == "rolled_back" and hooks.rollback_only
            self.span.set_outcome("rollback_only" if marked else status)
        await hooks.complete(status)

    # -- the whole boundary ----------------------------------------------------------------

    async def __aenter__(self) -> TransactionScope:
        return await self.enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                await self.commit()
            else:
                await self.rollback()
        finally:
            await self.release()

    async def run(
        self,
        work: Callable[[], Awaitable[R]],
        definition: TransactionDefinition = REQUIRED,
        *,
        will_retry: Callable[[BaseException], bool] | None = None,
    ) -> R:
        """Run ``work`` as this unit of work under ``definition``'s rules.

        ``will_retry(error)`` tells whether the caller is going to run the whole call again
        after ``error``; such an attempt is rolled back without running its hooks.
        Work that never touched the database and registered no hook (a cache hit, say)
        ends without a single extra coroutine hop.
        """
        factory = self.scope.factory
        shared = factory is not None and factory.shared_connection is not None
        scope = await self.enter() if shared else self.begin()
        try:
            if definition.isolation is not None and not shared:  # a test's savepoint keeps its own
                await scope.session.connection(
                    execution_options={"isolation_level": definition.isolation.value}
                )
            try:
                with MAPPED_ERRORS:
                    if definition.timeout is None:
                        result = await work()
                    else:
                        result = await with_timeout(definition.timeout, work())
            except BaseException as error:  # mapped
                if definition.should_rollback(error):
                    await self.rollback(run_hooks=will_retry is None or not will_retry(error))
                else:
                    await self.commit()
                raise
            hooks = scope.hooks
            if hooks.rollback_only or scope.has_session or hooks.pending:
                await self.commit(will_retry=will_retry)
            else:  # nothing to commit: end without a coroutine hop
                hooks.completed = True
                if self.span is not None:
                    self.span.set_outcome("committed")
            return result
        finally:
            await self.release()


async def join(scope: TransactionScope, definition: TransactionDefinition, work: Awaitable[R]) -> R:
    """Run ``work`` inside ``scope``'s transaction, which some other boundary owns.

    An error escaping it is mapped, and marks the transaction rollback-only where the
    definition's rules say it rolls back, so that the owner rolls back even if a caller
    swallows the error. This is the only place that marks a joined transaction.
    """
    try:
        try:
            if definition.timeout is None:
                return await work
            return await with_timeout(definition.timeout, work)
        except BaseException as error:
            MAPPED_ERRORS.raise_mapped(error)  # not a `with`: every joined call runs this
    except BaseException as error:  # mapped
        if definition.should_rollback(error):
            scope.hooks.rollback_only = True
        raise


async def with_timeout(seconds: float, work: Awaitable[R]) -> R:
    """Await ``work``; after ``seconds`` cancel it and raise TransactionTimeoutError."""
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await work
    except TimeoutError as exc:
        if not deadline.expired() or isinstance(exc, TransactionTimeoutError):
            raise
        raise TransactionTimeoutError(
            f"transactional work exceeded its timeout of {seconds:g}s and was cancelled"
        ) from exc
