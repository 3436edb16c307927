"""Derived query methods (implemented from their names) and @query."""

from __future__ import annotations

import inspect
import types
from typing import Any

import pytest
from sqlalchemy import Row

from tests.repository.models import Tier, User
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    DerivedQueryError,
    EntityDefinitionError,
    query,
)


class Users(DbRepo[User]):
    async def find_by_email(self, email: str) -> User | None: ...
    async def find_by_email_and_is_active(self, email: str, is_active: bool) -> User | None: ...
    async def find_all_by_name_or_age(self, name: str, age: int) -> list[User]: ...
    async def find_all_by_age_greater_than(self, age: int) -> list[User]: ...
    async def find_all_by_age_less_than_equal_order_by_age_desc(self, age: int) -> list[User]: ...
    async def find_all_by_age_between(self, low: int, high: int) -> list[User]: ...
    async def find_all_by_name_like(self, pattern: str) -> list[User]: ...
    async def find_all_by_tier_in(self, tiers: list[Tier]) -> list[User]: ...
    async def find_all_by_age_is_null(self) -> list[User]: ...
    async def find_all_by_age_is_not_null_order_by_name_desc(self) -> list[User]: ...
    async def find_first_by_is_active_order_by_age_desc(self, is_active: bool) -> User | None: ...
    async def find_top_2_by_is_active_order_by_name(self, is_active: bool) -> list[User]: ...
    async def find_all_by_name_not(self, name: str) -> list[User]: ...
    async def count_by_is_active(self, is_active: bool) -> int: ...
    async def exists_by_email(self, email: str) -> bool: ...
    async def delete_by_age_less_than(self, age: int) -> int: ...

    async def find_by_custom(self, x: int) -> int:
        """A real body: left alone even though the name looks derived."""
        return x * 2

    @query("SELECT * FROM repo_users WHERE name = :name ORDER BY id")
    async def named(self, name: str) -> list[User]: ...

    @query("SELECT * FROM repo_users WHERE email = :email")
    async def one_by_email(self, email: str) -> User | None: ...

    @query("SELECT name, age FROM repo_users WHERE age >= :low ORDER BY age")
    async def name_age_rows(self, low: int) -> list[Row[Any]]: ...

    @query("SELECT count(*) FROM repo_users WHERE id IN :ids", returns="scalar")
    async def count_ids(self, ids: list[int]) -> int: ...

    @query("UPDATE repo_users SET age = :age WHERE name = :name")
    async def set_age(self, name: str, age: int) -> int: ...


async def _seed(repo: Users) -> list[User]:
    return await repo.save_all(
        [
            User(email="ann@x.io", name="Ann", age=31),
            User(email="bob@x.io", name="Bob", age=25, is_active=False),
            User(email="cid@x.io", name="Cid", age=None, tier=Tier.pro),
            User(email="dan@x.io", name="Dan", age=40),
        ]
    )


async def test_derived_finders(db: DatabaseSessionFactory) -> None:
    repo = Users()
    _ann, bob, _cid, dan = await _seed(repo)
    assert (await repo.find_by_email("bob@x.io")).id == bob.id
    assert await repo.find_by_email("zzz") is None
    assert await repo.find_by_email_and_is_active("bob@x.io", False) is not None
    assert await repo.find_by_email_and_is_active("bob@x.io", True) is None
    assert await repo.find_by_email_and_is_active(is_active=False, email="bob@x.io") is not None
    assert [u.name for u in await repo.find_all_by_name_or_age("Ann", 40)] == ["Ann", "Dan"]
    assert [u.name for u in await repo.find_all_by_age_greater_than(30)] == ["Ann", "Dan"]
    assert [u.name for u in await repo.find_all_by_age_less_than_equal_order_by_age_desc(31)] == [
        "Ann",
        "Bob",
    ]
    assert [u.name for u in await repo.find_all_by_age_between(25, 31)] == [
        "Ann",
        "Bob",
    ]  # inclusive
    assert [u.name for u in await repo.find_all_by_name_like("%a%")] in (["Dan"], ["Ann", "Dan"])
    assert [u.name for u in await repo.find_all_by_name_like("_i_")] == ["Cid"]
    assert [u.name for u in await repo.find_all_by_tier_in([Tier.pro])] == ["Cid"]
    assert await repo.find_all_by_tier_in([]) == []
    assert [u.name for u in await repo.find_all_by_age_is_null()] == ["Cid"]
    assert [u.name for u in await repo.find_all_by_age_is_not_null_order_by_name_desc()] == [
        "Dan",
        "Bob",
        "Ann",
    ]
    # NULLs sort first descending on every backend, as in get_page/get_slice
    assert (await repo.find_first_by_is_active_order_by_age_desc(True)).name == "Cid"
    assert [u.name for u in await repo.find_top_2_by_is_active_order_by_name(True)] == [
        "Ann",
        "Cid",
    ]
    assert [u.name for u in await repo.find_all_by_name_not("Ann")] == ["Bob", "Cid", "Dan"]
    assert await repo.count_by_is_active(True) == 3
    assert await repo.exists_by_email("cid@x.io") is True
    assert await repo.exists_by_email("nope") is False
    assert await repo.find_by_custom(21) == 42

    await repo.soft_delete(dan.id)  # derived queries see what the view sees
    assert await repo.count_by_is_active(True) == 2
    assert await repo.with_deleted().count_by_is_active(True) == 3
    assert await repo.exists_by_email("dan@x.io") is False
    assert [u.name for u in await repo.only_deleted().find_all_by_age_greater_than(0)] == ["Dan"]

    assert await repo.delete_by_age_less_than(30) == 1  # User soft-deletes: one UPDATE
    assert [u.name for u in await repo.all()] == ["Ann", "Cid"]
    assert [u.name for u in await repo.only_deleted().all()] == ["Bob", "Dan"]
    assert await repo.delete_by_age_less_than(30) == 0


def test_derived_methods_keep_their_signature() -> None:
    method = Users.find_by_email_and_is_active
    assert list(inspect.signature(method).parameters) == ["self", "email", "is_active"]
    assert inspect.signature(method).return_annotation in ("User | None", User | None)
    assert method.__name__ == "find_by_email_and_is_active"
    assert inspect.iscoroutinefunction(method)


async def test_derived_argument_errors(db: DatabaseSessionFactory) -> None:
    with pytest.raises(TypeError):
        await Users().find_by_email()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        await Users().find_all_by_age_between(1)  # type: ignore[call-arg]


def test_misspelt_attribute_fails_at_class_creation() -> None:
    with pytest.raises(DerivedQueryError) as info:

        class Broken(DbRepo[User]):
            async def find_by_emial_and_is_active(
                self, email: str, active: bool
            ) -> User | None: ...

    message = str(info.value)
    assert "emial" in message
    for valid in ("email", "is_active", "name", "age", "created_at", "deleted_at"):
        assert valid in message
    assert isinstance(info.value, EntityDefinitionError)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("async def find_all_by_age_between(self, low): ...", "needs 2"),
        ("async def count_by_name_and(self, name): ...", "at '_and'"),
        ("async def count_by_nam(self, name): ...", "unknown attribute"),
        ("async def find_by_name_order_by_nmae(self, name): ...", "order_by"),
        ("async def find_by_name_bogus(self, name): ...", "expected _and_"),
        ("async def find_top_0_by_name(self, name): ...", "N >= 1"),
        ("async def find_by_name(self, *names): ...", "positional"),
    ],
)
def test_bad_derived_names(source: str, match: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    ((name, fn),) = ((k, v) for k, v in namespace.items() if k != "__builtins__")
    with pytest.raises(DerivedQueryError, match=match):
        types.new_class("Broken", (DbRepo[User],), exec_body=lambda ns: ns.update({name: fn}))


def test_derived_needs_generic_entity() -> None:
    with pytest.raises(DerivedQueryError, match=r"DbRepo\[Entity\]"):

        class NoEntity(DbRepo):  # type: ignore[type-arg]
            async def find_by_name(self, name: str) -> Any: ...


async def test_query_binds_hostile_values_safely(db: DatabaseSessionFactory) -> None:
    repo = Users()
    await _seed(repo)
    hostile = "Ann' OR '1'='1'; DROP TABLE repo_users; --"
    assert await repo.named(hostile) == []
    odd = await repo.save(User(email="o@x.io", name=hostile))
    found = await repo.named(hostile)
    assert [u.id for u in found] == [odd.id] and found[0].name == hostile
    assert await repo.count() == 5  # the table is still there, nothing else matched
    assert (await repo.one_by_email("ann@x.io")).name == "Ann"
    assert await repo.one_by_email("x' OR 'a'='a") is None


async def test_query_rows_scalar_and_rowcount(db: DatabaseSessionFactory) -> None:
    repo = Users()
    ann, bob, _cid, _dan = await _seed(repo)
    rows = await repo.name_age_rows(26)
    assert [(r.name, r.age) for r in rows] == [("Ann", 31), ("Dan", 40)]
    assert await repo.count_ids([ann.id, bob.id, 999_999]) == 2
    assert await repo.set_age("Bob", 26) == 1
    assert (await repo.find_by_email("bob@x.io")).age == 26


def test_query_decoration_errors() -> None:
    with pytest.raises(TypeError, match=":missing"):

        class Bad(DbRepo[User]):
            @query("SELECT * FROM repo_users WHERE name = :missing")
            async def broken(self, name: str) -> list[User]: ...

    with pytest.raises(ValueError, match="returns="):
        query("SELECT 1", returns="everything")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async def"):

        @query("SELECT 1")
        def sync_function() -> None: ...


async def test_query_on_plain_function(db: DatabaseSessionFactory) -> None:
    await Users().save(User(email="f@x.io", name="F"))

    @query("SELECT * FROM repo_users WHERE email = :email", model=User, returns="entities")
    async def by_email(email: str) -> list[User]: ...

    assert [u.name for u in await by_email("f@x.io")] == ["F"]


async def test_derived_stubs_of_a_generic_base(db: DatabaseSessionFactory) -> None:
    from typing import Generic, TypeVar

    from tests.repository.models import Item

    E = TypeVar("E")

    class NamedRepo(DbRepo[E], Generic[E]):
        async def count_by_name(self, name: str) -> int: ...

    class UserNames(NamedRepo[User]):
        pass

    await UserNames().save(User(email="g@x.io", name="G"))
    assert await UserNames().count_by_name("G") == 1
    with pytest.raises(DerivedQueryError, match="unknown attribute"):

        class ItemNames(NamedRepo[Item]):  # Item has no `name`: refused at class creation
            pass


class DocumentedUsers(DbRepo[User]):
    async def find_by_email_and_name(self, email: str, name: str) -> User | None:
        """Doc."""
        ...

    async def find_all_by_is_active(self, is_active: bool) -> list[User]:
        """Documented, with pass."""
        pass

    async def count_by_name(self, name: str) -> int:
        pass

    async def exists_by_name(self, name: str) -> bool:
        """A docstring alone is a stub body too."""

    async def find_by_name(self, name: str) -> User | None:
        """A real body that happens to compile like a stub: never replaced."""
        return None

    async def find_by_age(self, age: int) -> User | None:
        return None

    async def find_first_by_name(self, name: str) -> User | None:
        """A real body."""
        return await self.find_by(name=name)

    async def find_all_by_age(self, age: int) -> list[User]:
        """Ellipsis, then real work: not a stub."""
        ...
        return []


async def test_derived_stubs_with_docstring_or_pass(db: DatabaseSessionFactory) -> None:
    repo = DocumentedUsers()
    _ann, bob, _cid, _dan = await _seed(Users())
    found = await repo.find_by_email_and_name("bob@x.io", "Bob")
    assert found is not None and found.id == bob.id
    assert await repo.find_by_email_and_name("bob@x.io", "Ann") is None
    assert sorted(u.name for u in await repo.find_all_by_is_active(True)) == ["Ann", "Cid", "Dan"]
    assert await repo.count_by_name("Ann") == 1
    assert await repo.exists_by_name("Dan") is True
    assert await repo.exists_by_name("Zed") is False
    assert DocumentedUsers.find_by_email_and_name.__doc__ == "Doc."


async def test_real_bodies_are_never_replaced(db: DatabaseSessionFactory) -> None:
    repo = DocumentedUsers()
    await _seed(Users())
    assert await repo.find_by_name("Ann") is None  # its own `return None`, not a query
    assert await repo.find_by_age(31) is None
    first = await repo.find_first_by_name("Ann")
    assert first is not None and first.name == "Ann"
    assert await repo.find_all_by_age(31) == []
    for name in ("find_by_name", "find_by_age", "find_first_by_name", "find_all_by_age"):
        assert vars(DocumentedUsers)[name].__code__.co_filename == __file__


def test_is_stub_shapes() -> None:
    from viveka_db.repository.derived_stubs import is_stub

    async def ellipsis(self: Any) -> None: ...

    async def passes(self: Any) -> None:
        pass

    async def documented(self: Any) -> None:
        """Doc."""
        ...

    async def documented_pass(self: Any) -> None:
        """Doc."""
        pass

    async def returns_none(self: Any) -> None:
        return None

    async def returns_value(self: Any) -> int:
        """Doc."""
        return 1

    def sync_stub(self: Any) -> None: ...

    for fn in (ellipsis, passes, documented, documented_pass):
        assert is_stub(fn), fn.__name__
    for other in (returns_none, returns_value, sync_stub, len, None):
        assert not is_stub(other), other


def test_is_stub_without_source_uses_bytecode() -> None:
    from viveka_db.repository.derived_stubs import is_stub

    namespace: dict[str, Any] = {}
    exec(  # no source file: bytecode alone decides
        "async def documented(self):\n    '''Doc.'''\n    ...\n"
        "async def real(self, x):\n    '''Doc.'''\n    return x\n",
        namespace,
    )
    assert is_stub(namespace["documented"])
    assert not is_stub(namespace["real"])
