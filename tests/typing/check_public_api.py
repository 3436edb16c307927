"""Static types of the documented API, checked by mypy --strict and pyright strict.

Not a pytest module (its name does not start with ``test_``): ``make typecheck`` runs both
checkers on it, and every ``assert_type`` below fails the build if a decorator or a
repository method loses a type (``Any`` is not ``User``). Nothing here needs to run.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, assert_type

from sqlalchemy import ColumnElement, Select, String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    AdvisoryLock,
    DbRepo,
    IntPKMixin,
    Page,
    Propagation,
    Slice,
    SoftDeleteMixin,
    Spec,
    TimestampMixin,
    UUIDPKMixin,
    VersionMixin,
    VivekaDbBase,
    advisory_lock,
    cache_evict,
    cacheable,
    entity,
    repository,
    table,
    transactional,
)
from viveka_db.integrations.fastapi import FilterParams
from viveka_db.testing import EntityFactory, factory_for


@entity
@table("typing_users")
class User(VivekaDbBase, IntPKMixin, TimestampMixin, SoftDeleteMixin, VersionMixin):
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(100))


@entity(name="typing.Document")
@table("typing_documents")
class Document(VivekaDbBase, UUIDPKMixin):
    title: Mapped[str] = mapped_column(String(200))


@repository
class UserRepo(DbRepo[User]):
    # Derived query stubs exactly as the README writes them (mypy needs the viveka_db.mypy
    # plugin for the non-Optional ones; pyright accepts ``...`` bodies as they are).
    async def find_by_email_and_name(self, email: str, name: str) -> User | None: ...
    async def find_all_by_name(self, name: str) -> list[User]: ...
    async def find_top_3_by_name_order_by_email_desc(self, name: str) -> list[User]: ...
    async def count_by_name(self, name: str) -> int: ...
    async def exists_by_email(self, email: str) -> bool: ...
    async def delete_by_name(self, name: str) -> int:
        """A docstring before the ``...`` is allowed too."""
        ...

    @transactional
    @cacheable("user", ttl=60)
    async def cached(self, user_id: int) -> User | None:
        return await self.get_by_id(user_id)

    @transactional(propagation=Propagation.REQUIRES_NEW, read_only=True)
    async def emails(self, limit: int = 10) -> list[str]:
        return [user.email for user in await self.get_all(limit=limit)]

    @cache_evict("user", key="{user.id}")
    async def rename(self, user: User, name: str) -> User:
        user.name = name
        return await self.save(user)


@repository()
class DocumentRepo(DbRepo[Document]):
    pass


async def documented_calls(users: UserRepo, documents: DocumentRepo) -> None:
    assert_type(User, type[User])
    assert_type(User(email="a@example.com", name="a").email, str)
    assert_type(UserRepo, type[UserRepo])

    assert_type(await users.get_by_id(1), User | None)
    assert_type(await users.get_or_raise(1), User)
    assert_type(await users.get_all(), list[User])
    assert_type(await users.get_all(skip=10, limit=5), list[User])
    assert_type(await users.find_by(email="a@example.com"), User | None)
    assert_type(await users.find_all_by(name="a"), list[User])
    assert_type(await users.find_by_field("email", "a@example.com"), User | None)
    assert_type(await users.find_all_by_field(User.name, "a"), list[User])
    assert_type(await users.get_page(2, 20, sort=User.email), Page[User])
    assert_type(await users.get_page(query=users.where(User.name == "a")), Page[User])
    first: Slice[User] = await users.get_slice(size=20, sort=[User.created_at.desc()])
    assert_type(first, Slice[User])
    assert_type(first.next_cursor, str | None)
    assert_type(await users.get_slice(after=first.next_cursor), Slice[User])
    assert_type(await users.save(User(email="b@example.com", name="b")), User)
    assert_type(await users.insert_all([User(email="c@example.com", name="c")]), list[User])
    assert_type(await users.update(User(email="d@example.com", name="d")), User)
    assert_type(await users.delete(1), bool)
    assert_type(await users.exists(1), bool)
    assert_type(await users.count(), int)
    assert_type(await users.all(users.where(User.name == "a")), list[User])
    assert_type(await users.first(), User | None)
    assert_type(await users.first(users.where(User.name == "a")), User | None)
    assert_type(await users.soft_delete(1), bool)
    assert_type(await users.restore(1), bool)

    # row locks, work queues, advisory locks
    assert_type(await users.get_by_id(1, lock="update"), User | None)
    assert_type(await users.get_or_raise(1, lock="share"), User)
    assert_type(await users.find_all_by(name="a", lock="update_skip_locked"), list[User])
    assert_type(await users.all(users.where(User.name == "a"), lock="update_nowait"), list[User])
    assert_type(await users.first(lock="update"), User | None)
    assert_type(await users.get_page(lock="update"), Page[User])
    assert_type(await users.claim_batch(10), list[User])
    assert_type(await users.claim_batch(10, users.where(User.name == "a")), list[User])
    async with advisory_lock("report", timeout=5) as lock:
        assert_type(lock, AdvisoryLock)
        assert_type(lock.token, int)
    # specifications: typed operands, usable as query= on every read
    adults = Spec.eq(User.name, "a") & ~Spec.is_null(User.email) | Spec.in_(User.name, ["b"])
    assert_type(adults, Spec[Any])
    assert_type(await users.all(adults), list[User])
    assert_type(await users.first(adults), User | None)
    assert_type(await users.count(adults), int)
    assert_type(await users.get_page(query=adults), Page[User])
    assert_type(await users.get_slice(sort="-name", query=adults), Slice[User])
    assert_type(await users.get_all(0, 10, adults), list[User])
    assert_type(users.where(adults, User.name != "z"), Select[User])
    assert_type(adults.criterion(User), ColumnElement[bool])
    filters = FilterParams[User]([Spec.like("name", "a%")], {"name__like": "a%"})
    assert_type(await users.get_page(query=filters & adults), Page[User])
    users_factory = factory_for(User, seed=1)
    assert_type(users_factory, EntityFactory[User])
    assert_type(users_factory.build(name="x"), User)
    assert_type(await users_factory.create_batch(3), list[User])

    # derived query stubs keep their declared types
    assert_type(await users.find_by_email_and_name("a@example.com", "a"), User | None)
    assert_type(await users.find_all_by_name("a"), list[User])
    assert_type(await users.find_top_3_by_name_order_by_email_desc("a"), list[User])
    assert_type(await users.count_by_name("a"), int)
    assert_type(await users.exists_by_email("a@example.com"), bool)
    assert_type(await users.delete_by_name("a"), int)

    # decorated methods keep their signatures
    assert_type(await users.cached(1), User | None)
    assert_type(await users.emails(), list[str])
    assert_type(await users.emails(limit=3), list[str])
    user = await users.get_or_raise(1)
    assert_type(await users.rename(user, "new"), User)
    assert_type(user.created_at, datetime)
    assert_type(user.deleted_at, datetime | None)
    assert_type(user.version, int)

    assert_type(await documents.get_by_id(uuid.uuid4()), Document | None)
    page = await documents.get_page()
    assert_type(page.items, list[Document])
    assert_type(page.total, int)


@transactional
async def register(users: UserRepo, email: str) -> User:
    return await users.save(User(email=email, name=email))


@transactional(propagation=Propagation.REQUIRES_NEW)
async def register_alone(users: UserRepo, email: str) -> User:
    return await users.save(User(email=email, name=email))


async def decorated_functions(users: UserRepo) -> None:
    assert_type(await register(users, "e@example.com"), User)
    assert_type(await register_alone(users, "e@example.com"), User)


def unused(*args: Any) -> None:
    """Keeps the module importable without side effects (nothing runs at import)."""
