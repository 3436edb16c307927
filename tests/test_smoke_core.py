from sqlalchemy import Column, Integer, String

from viveka_db import DatabaseSessionFactory, DbRepo, VivekaDbBase, entity, table


@entity
@table("core_smoke")
class Smoke(VivekaDbBase):
    id = Column(Integer, primary_key=True)
    name = Column(String(50), nullable=False)


async def test_insert_and_count(db: DatabaseSessionFactory) -> None:
    repo = DbRepo(Smoke)
    await repo.insert_all([Smoke(name="a"), Smoke(name="b")])
    assert await repo.count() == 2
