"""Running several coroutines concurrently, each in its own session and transaction.

``asyncio.gather`` of repository calls inside one transaction would share one session
across tasks, which SQLAlchemy forbids; this helper gives each its own instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar, overload

from viveka_db.context.db_context import DEFAULT
from viveka_db.transaction.definition import Propagation, TransactionDefinition
from viveka_db.transaction.manager import run_in_new_transaction

__all__ = ["run_concurrently"]

R = TypeVar("R")


@overload
async def run_concurrently(
    *awaitables: Awaitable[R],
    data_source: str = ...,
    read_only: bool = ...,
    return_exceptions: Literal[False] = ...,
) -> list[R]: ...
@overload
async def run_concurrently(
    *awaitables: Awaitable[R],
    data_source: str = ...,
    read_only: bool = ...,
    return_exceptions: Literal[True],
) -> list[R | BaseException]: ...
async def run_concurrently(
    *awaitables: Awaitable[Any],
    data_source: str = DEFAULT,
    read_only: bool = False,
    return_exceptions: bool = False,
) -> list[Any]:
    """Await ``awaitables`` concurrently, each in a new session and transaction.

    Each one commits (or rolls back) on its own, like ``Propagation.REQUIRES_NEW``. All of
    them run to completion; then the results are returned in order, or the first failure
    (in argument order) is raised. With ``return_exceptions=True`` failures are returned
    in place of results instead.
    """
    definition = TransactionDefinition(propagation=Propagation.REQUIRES_NEW, read_only=read_only)

    async def run_one(awaitable: Awaitable[Any]) -> Any:
        async def work() -> Any:
            return await awaitable

        return await run_in_new_transaction(definition, data_source, work, name="run_concurrently")

    results = await asyncio.gather(*(run_one(a) for a in awaitables), return_exceptions=True)
    if not return_exceptions:
        for result in results:
            if isinstance(result, BaseException):
                raise result
    return list(results)
