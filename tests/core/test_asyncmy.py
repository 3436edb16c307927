"""MySQL/MariaDB through asyncmy works as through aiomysql (the suite's MariaDB driver)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from tests.core.models import Item
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    Propagation,
    ReadOnlyTransactionError,
    UnexpectedRollbackError,
    transactional,
)

pytest.importorskip("asyncmy")


@pytest.fixture
async def asyncmy_factory(
    db: DatabaseSessionFactory, backend: str, backend_url: str
) -> AsyncIterator[DatabaseSessionFactory]:
    if backend != "mariadb":
        pytest.skip("asyncmy is a MySQL/MariaDB driver")
    await DatabaseSessionFactory.close_all()
    url = make_url(backend_url).set(drivername="mysql+asyncmy")
    factory = DatabaseSessionFactory(
        {"database": {"url": url.render_as_string(hide_password=False)}}
    )
    yield factory
    await DatabaseSessionFactory.close_all()
    DatabaseSessionFactory({"database": {"url": backend_url}})  # for the db fixture's cleanup


async def test_crud_transactions_and_read_only_on_asyncmy(
    asyncmy_factory: DatabaseSessionFactory,
) -> None:
    repo = DbRepo(Item)

    class Service:
        @transactional
        async def fails_inside(self) -> None:
            await repo.insert_all([Item(tag="inner", n=1)])
            raise ValueError("boom")

        @transactional
        async def swallows(self) -> None:
            with contextlib.suppress(ValueError):  # swallowed: the outer must not commit
                await self.fails_inside()

        @transactional(propagation=Propagation.NESTED)
        async def nested_fails(self) -> None:
            await repo.insert_all([Item(tag="nested", n=2)])
            raise ValueError("nested")

        @transactional
        async def outer_keeps_its_work(self) -> None:
            await repo.insert_all([Item(tag="outer", n=3)])
            with contextlib.suppress(ValueError):  # only the savepoint is rolled back
                await self.nested_fails()

        @transactional(read_only=True)
        async def read(self, tag: str) -> Item | None:
            return await repo.find_by_field("tag", tag)

        @transactional(read_only=True)
        async def write_in_read_only(self) -> None:
            await repo.insert_all([Item(tag="ro", n=4)])

    service = Service()
    (saved,) = await repo.insert_all([Item(tag="a", n=0)])
    assert saved.id is not None
    assert (await repo.get_by_id(saved.id)) is not None

    with pytest.raises(UnexpectedRollbackError):
        await service.swallows()
    await service.outer_keeps_its_work()
    with pytest.raises(ReadOnlyTransactionError):
        await service.write_in_read_only()

    assert await service.read("outer") is not None
    for gone in ("inner", "nested", "ro"):
        assert await repo.find_by_field("tag", gone) is None
    assert await repo.count() == 2
    assert asyncmy_factory.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
