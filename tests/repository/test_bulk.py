"""insert_all fast paths and upsert_all conflict policies."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from tests.repository.models import (
    Account,
    AccountRepo,
    Doc,
    DocRepo,
    Item,
    ItemRepo,
    Label,
    Ticket,
    User,
    UserRepo,
)
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    ReadOnlyTransactionError,
    UnknownFieldError,
    current_session,
    transactional,
)


class StatementCounter:
    def __init__(self, factory: DatabaseSessionFactory) -> None:
        self.engine = factory.engine.sync_engine
        self.statements: list[str] = []

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


async def test_insert_all_10000_rows_round_trip(db: DatabaseSessionFactory) -> None:
    repo = ItemRepo()
    rows = [Item(sku=f"s{i:05d}", shop="main", qty=i) for i in range(10_000)]
    with StatementCounter(db) as counter:
        inserted = await repo.insert_all(rows)
    assert inserted == rows  # the given instances come back, keys filled in
    ids = [item.id for item in inserted]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 10_000
    assert len(counter.statements) < 50  # batched: no round trip per row
    stored = await repo.all()
    assert len(stored) == 10_000
    by_id = {item.id: item for item in stored}
    assert all(by_id[item.id].sku == item.sku and by_id[item.id].qty == item.qty for item in rows)


async def test_insert_all_from_dicts_returns_entities(db: DatabaseSessionFactory) -> None:
    users = await UserRepo().insert_all(
        [{"email": f"u{i}@x.io", "name": f"N{i}", "age": i} for i in range(700)]
    )
    assert all(isinstance(u, User) for u in users)
    assert [u.email for u in users[:2]] == ["u0@x.io", "u1@x.io"]
    assert all(u.id is not None and u.is_active is True and u.deleted_at is None for u in users)
    again = await UserRepo().get_by_id(users[5].id)
    assert again is not None and again.email == "u5@x.io" and again.age == 5


async def test_insert_all_entities_are_persistent_in_the_transaction(
    db: DatabaseSessionFactory,
) -> None:
    repo = ItemRepo()

    @transactional
    async def work() -> None:
        items = await repo.insert_all([Item(sku=f"p{i}", shop="s") for i in range(600)])
        assert all(item in current_session() for item in items)
        assert await repo.get_by_id(items[3].id) is items[3]  # identity map, no reload
        items[3].qty = 42  # tracked like any loaded entity, flushed at commit

    await work()
    stored = await repo.find_by(sku="p3")
    assert stored is not None and stored.qty == 42


async def test_insert_all_is_rolled_back_with_the_caller(db: DatabaseSessionFactory) -> None:
    repo = ItemRepo()

    @transactional
    async def work() -> None:
        await repo.insert_all([{"sku": f"r{i}", "shop": "s"} for i in range(1000)])
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await work()
    assert await repo.count() == 0


async def test_insert_all_uuid_keys_and_versions(db: DatabaseSessionFactory) -> None:
    docs = await DocRepo().insert_all([Doc(title=f"d{i}") for i in range(600)])
    assert all(isinstance(d.id, uuid.UUID) and d.version == 1 and d.views == 0 for d in docs)
    assert await DocRepo().count() == 600


async def test_insert_all_bad_input(db: DatabaseSessionFactory) -> None:
    with pytest.raises(UnknownFieldError, match="skuu"):
        await ItemRepo().insert_all([{"skuu": "x", "shop": "s"}])
    with pytest.raises(TypeError, match="Item instances or dicts"):
        await ItemRepo().insert_all([42])  # type: ignore[list-item]
    assert await ItemRepo().insert_all([]) == []


async def test_insert_all_respects_read_only(db: DatabaseSessionFactory) -> None:
    @transactional(read_only=True)
    async def sneaky() -> None:
        await ItemRepo().insert_all([{"sku": f"x{i}", "shop": "s"} for i in range(600)])

    with pytest.raises(ReadOnlyTransactionError):
        await sneaky()


async def test_insert_all_falls_back_for_persistent_entities(db: DatabaseSessionFactory) -> None:
    repo = ItemRepo()
    first = await repo.insert_all([Item(sku="a", shop="s")])
    first[0].qty = 7  # already stored: the unit of work re-attaches it (add_all semantics)
    again = await repo.insert_all([*first, Item(sku="b", shop="s")])
    assert again[0] is first[0] and again[1].id is not None
    assert sorted((i.sku, i.qty) for i in await repo.all()) == [("a", 7), ("b", 0)]


async def test_upsert_update_policy(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    original = await repo.save(User(email="a@x.io", name="Old", age=1))
    await asyncio.sleep(0.002)
    written = await repo.upsert_all(
        [{"email": "a@x.io", "name": "New", "age": 2}, User(email="b@x.io", name="B")],
        conflict=("email",),
        on_conflict="update",
    )
    assert sorted(u.email for u in written) == ["a@x.io", "b@x.io"]
    stored = await repo.find_by(email="a@x.io")
    assert stored is not None and stored.id == original.id
    assert (stored.name, stored.age) == ("New", 2)
    assert stored.created_at == original.created_at  # an updating upsert keeps created_at
    assert stored.updated_at > original.updated_at
    assert await repo.count() == 2


async def test_upsert_update_limited_columns(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    await repo.save(User(email="a@x.io", name="Old", age=1))
    await repo.upsert_all(
        [{"email": "a@x.io", "name": "New", "age": 9}], conflict="email", update=["age"]
    )
    stored = await repo.find_by(email="a@x.io")
    assert stored is not None and (stored.name, stored.age) == ("Old", 9)


async def test_upsert_nothing_policy(db: DatabaseSessionFactory, backend: str) -> None:
    repo = UserRepo()
    await repo.save(User(email="a@x.io", name="Keep"))
    written = await repo.upsert_all(
        [{"email": "a@x.io", "name": "Lost"}, {"email": "c@x.io", "name": "C"}],
        conflict=["email"],
        on_conflict="nothing",
    )
    emails = sorted(u.email for u in written)
    assert emails == (["a@x.io", "c@x.io"] if backend == "mariadb" else ["c@x.io"])
    assert (await repo.find_by(email="a@x.io")).name == "Keep"
    assert await repo.count() == 2


async def test_upsert_fail_policy(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    await repo.save(User(email="a@x.io", name="Keep"))
    with pytest.raises(IntegrityError):
        await repo.upsert_all(
            [{"email": "b@x.io", "name": "B"}, {"email": "a@x.io", "name": "X"}],
            conflict="email",
            on_conflict="fail",
        )
    assert await repo.count() == 1
    written = await repo.upsert_all(
        [{"email": "b@x.io", "name": "B"}], conflict="email", on_conflict="fail"
    )
    assert [u.email for u in written] == ["b@x.io"]


async def test_upsert_composite_conflict_and_version(db: DatabaseSessionFactory) -> None:
    items = ItemRepo()
    await items.insert_all(
        [{"sku": "k", "shop": "s1", "qty": 1}, {"sku": "k", "shop": "s2", "qty": 1}]
    )
    await items.upsert_all([{"sku": "k", "shop": "s1", "qty": 5}], conflict=("sku", "shop"))
    assert sorted((i.shop, i.qty) for i in await items.all()) == [("s1", 5), ("s2", 1)]

    accounts = AccountRepo()
    acc = await accounts.save(Account(owner="o", balance=1))
    await accounts.upsert_all([{"id": acc.id, "owner": "o", "balance": 2}])  # conflict: primary key
    stored = await accounts.get_by_id(acc.id)
    assert stored is not None and stored.balance == 2 and stored.version == 2


async def test_upsert_bad_arguments(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    with pytest.raises(ValueError, match="on_conflict"):
        await repo.upsert_all([{"email": "a", "name": "a"}], conflict="email", on_conflict="merge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not the primary key or a unique"):
        await repo.upsert_all([{"email": "a", "name": "a"}], conflict="name")
    with pytest.raises(UnknownFieldError):
        await repo.upsert_all([{"email": "a", "name": "a"}], conflict="mail")
    assert await repo.count() == 0


async def test_upsert_concurrent_writers_do_not_duplicate(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()

    async def writer(n: int) -> None:
        await repo.upsert_all([{"email": "same@x.io", "name": f"w{n}"}], conflict="email")

    await asyncio.gather(*(writer(n) for n in range(5)))
    assert await repo.count() == 1

    @transactional
    async def names() -> list[str]:
        return list((await current_session().scalars(select(User.name))).all())

    assert (await names())[0] in {f"w{n}" for n in range(5)}


async def test_insert_all_values_survive_every_fast_path(db: DatabaseSessionFactory) -> None:
    """Quotes, backslashes, SQL, unicode, NULLs and percent signs come back unchanged."""
    tricky = [
        "it's",
        'say "hi"',
        "back\\slash",
        "'); DROP TABLE repo_items; --",
        "naïve ☃",
        "100%",
        "%s",
        "",
    ]
    rows = [
        {"sku": f"t{i}", "shop": value, "note": None if i % 2 else value, "qty": i}
        for i, value in enumerate(tricky * 80)  # 640 rows: above the COPY threshold
    ]
    inserted = await ItemRepo().insert_all(rows)
    stored = {item.sku: item for item in await ItemRepo().all()}
    assert len(stored) == len(rows)
    for item in inserted:
        assert (stored[item.sku].shop, stored[item.sku].note) == (item.shop, item.note)
        assert stored[item.sku].id == item.id


async def test_insert_all_in_a_rolled_back_savepoint(db: DatabaseSessionFactory) -> None:
    from sqlalchemy import inspect as sa_inspect

    from viveka_db import Propagation

    repo = ItemRepo()
    kept: list[Item] = []
    dropped: list[Item] = []

    @transactional(propagation=Propagation.NESTED)
    async def inner() -> None:
        dropped.extend(await repo.insert_all([{"sku": f"d{i}", "shop": "s"} for i in range(600)]))
        raise RuntimeError("undo the savepoint")

    @transactional
    async def outer() -> None:
        kept.extend(await repo.insert_all([{"sku": f"k{i}", "shop": "s"} for i in range(600)]))
        with pytest.raises(RuntimeError):
            await inner()
        assert await repo.count() == 600

    await outer()
    assert await repo.count() == 600
    assert all(sa_inspect(item).transient for item in dropped)  # as after a rolled-back flush
    assert all(sa_inspect(item).detached for item in kept)


async def test_insert_all_of_entities_with_only_a_generated_key(db: DatabaseSessionFactory) -> None:
    repo = DbRepo(Ticket)
    one = await repo.insert_all([Ticket()])
    many = await repo.insert_all([Ticket() for _ in range(3)])
    ids = [t.id for t in one + many]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 4
    assert await repo.count() == 4


async def test_insert_all_defaults_that_read_the_row(db: DatabaseSessionFactory) -> None:
    """A default computed from the row sees the row's values and the other defaults, for
    entities and dicts alike, on every fast path (600 rows: above the COPY threshold)."""
    given: list[Label | dict[str, Any]] = []
    for i in range(200):
        given += [
            Label(name=f"E{i}"),
            {"name": f"D{i}", "kind": "cat"},
            Label(name=f"S{i}", slug=f"own-{i}"),
        ]
    inserted = await DbRepo(Label).insert_all(given)
    assert [label.slug for label in inserted[:3]] == ["tag:e0", "cat:d0", "own-0"]
    assert inserted[-2].slug == "cat:d199" and inserted[-2].kind == "cat"
    stored = {label.id: label.slug for label in await DbRepo(Label).all()}
    assert stored == {label.id: label.slug for label in inserted}
