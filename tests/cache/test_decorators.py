"""Decorator options and single flight, without a database (MemoryCache and Redis kinds)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import inspect
import logging
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import inspect as sa_inspect

from tests.cache.conftest import until
from tests.cache.models import CacheDoc, CacheUser
from viveka_db import cache_evict, cacheable, get_cache
from viveka_db.cache import serializer
from viveka_db.cache.backend import CacheBackend


@dataclasses.dataclass
class Box:
    items: list[int]


async def test_condition_unless_and_cache_none(cache: CacheBackend) -> None:
    calls: list[Any] = []

    @cacheable("opts", condition=lambda x: x > 0, unless=lambda result: result == "skip")
    async def load(x: int) -> str | None:
        calls.append(x)
        return {1: "one", 2: "skip"}.get(x)

    for x in (1, 1, -1, -1, 2, 2, 3, 3):
        await load(x)
    assert calls == [1, -1, -1, 2, 2, 3, 3]

    @cacheable("none", cache_none=True)
    async def nothing(x: int) -> None:
        calls.append(("none", x))

    await nothing(1)
    await nothing(1)
    assert calls.count(("none", 1)) == 1


async def test_a_hit_returns_a_copy_the_caller_may_mutate(cache: CacheBackend) -> None:
    @cacheable("box")
    async def load(x: int) -> Box:
        return Box([x])

    first = await load(1)
    first.items.append(99)
    second = await load(1)
    second.items.append(100)
    assert (await load(1)) == Box([1])


async def test_entity_hits_are_new_instances_that_share_nothing(cache: CacheBackend) -> None:
    """Backends that keep payloads in memory rebuild entities from decoded values instead
    of parsing again; every hit is still a detached instance of its own."""
    joined = dt.datetime(2024, 5, 17, 12, 30, 15, 123000)
    ref = uuid.uuid4()
    serializer._reusable.clear()  # only what this test decodes

    @cacheable("copies_user")
    async def load_user(user_id: int) -> CacheUser:
        return CacheUser(id=user_id, name="Ada", balance=Decimal("1.50"), joined=joined, ref=ref)

    @cacheable("copies_doc")
    async def load_doc(doc_id: int) -> CacheDoc:
        return CacheDoc(id=doc_id, title="t", data={"tags": ["a"]})

    await load_user(1)
    hits = [await load_user(1) for _ in range(3)]
    assert len({id(hit) for hit in hits}) == 3
    hits[0].name = "changed"
    again = await load_user(1)
    expected = ("Ada", Decimal("1.50"), joined, ref)
    assert (again.name, again.balance, again.joined, again.ref) == expected
    states = [sa_inspect(hit) for hit in hits]
    assert all(state.detached and state.key == (CacheUser, (1,), None) for state in states)

    await load_doc(1)
    first = await load_doc(1)
    first.data["tags"].append("b")
    assert (await load_doc(1)).data == {"tags": ["a"]}
    reused = {plan.cls for _, plan, _ in serializer._reusable.values()}
    assert (CacheUser in reused) is cache.stable_payloads  # the rebuild path was taken
    assert CacheDoc not in reused  # a mutable column is never shared: parsed every time


async def test_an_unserialisable_result_is_returned_not_cached_and_logged_once(
    cache: CacheBackend, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    @cacheable("odd")
    async def load(x: int) -> object:
        nonlocal calls
        calls += 1
        return object()

    with caplog.at_level(logging.WARNING, "viveka_db.cache"):
        results = [await load(1) for _ in range(3)]
    assert calls == 3 and all(type(r) is object for r in results)
    assert len([r for r in caplog.records if "cannot store" in r.getMessage()]) == 1
    assert cache.stats().writes == 0


async def test_followers_get_their_own_copy_and_survive_a_failing_leader(
    cache: CacheBackend,
) -> None:
    release = asyncio.Event()
    calls = 0

    @cacheable("flight")
    async def load(x: int) -> Box:
        nonlocal calls
        calls += 1
        await release.wait()
        if calls == 1:
            raise RuntimeError("the leader fails")
        return Box([x])

    tasks = [asyncio.create_task(load(1)) for _ in range(20)]
    await until(lambda: calls == 1)
    await asyncio.sleep(0.05)  # the followers wait for the leader
    assert cache.stats().misses == 1
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len([r for r in results if isinstance(r, RuntimeError)]) == 1
    boxes = [r for r in results if not isinstance(r, RuntimeError)]
    assert all(b == Box([1]) for b in boxes)
    assert len({id(b) for b in boxes}) == 19
    assert calls >= 2  # the leader failed: the followers read and load again themselves


async def test_a_cancelled_leader_does_not_cancel_its_followers(cache: CacheBackend) -> None:
    release = asyncio.Event()

    @cacheable("cancel")
    async def load(x: int) -> int:
        await release.wait()
        return x

    leader = asyncio.create_task(load(1))
    await asyncio.sleep(0.05)
    follower = asyncio.create_task(load(1))
    await asyncio.sleep(0.05)
    leader.cancel()
    release.set()
    assert await follower == 1
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_evict_options(cache: CacheBackend) -> None:
    rows = {1: "a", 2: "b"}

    @cacheable("rows")
    async def get(x: int) -> str:
        return rows[x]

    @cache_evict("rows", key=lambda x, value: x)
    async def set_one(x: int, value: str) -> None:
        rows[x] = value

    @cache_evict("rows", before_invocation=True)
    async def fail_after_evicting() -> None:
        raise RuntimeError("failed")

    @cache_evict("rows")
    async def fail_before_evicting() -> None:
        raise RuntimeError("failed")

    await get(1), await get(2)
    rows[1], rows[2] = "a2", "b2"
    await set_one(1, "a3")
    assert (await get(1), await get(2)) == ("a3", "b")
    with pytest.raises(RuntimeError):
        await fail_before_evicting()
    assert await get(2) == "b"
    with pytest.raises(RuntimeError):
        await fail_after_evicting()
    assert await get(2) == "b2"
    assert get_cache().stats().evictions == 2


@dataclasses.dataclass
class Named:
    id: int
    name: str


@pytest.mark.parametrize(
    "key",
    [lambda person, new_name: person.name, "{person.name}"],
    ids=["key-function", "key-template"],
)
async def test_evict_key_comes_from_the_arguments_as_they_were_at_call_time(
    cache: CacheBackend, key: Any
) -> None:
    """A rename evicts the entry of the old name (the method changes the object it is given)."""
    people = {"alice": Named(1, "alice")}
    loads: list[str] = []

    @cacheable("by-name")
    async def by_name(name: str) -> int | None:
        loads.append(name)
        person = people.get(name)
        return None if person is None else person.id

    @cache_evict("by-name", key=key)
    async def rename(person: Named, new_name: str) -> None:
        del people[person.name]
        person.name = new_name
        people[new_name] = person

    assert await by_name("alice") == 1
    await rename(people["alice"], "alicia")
    assert await by_name("alice") is None  # the old name's entry is gone, not stale
    assert await by_name("alicia") == 1
    assert loads == ["alice", "alice", "alicia"]


def test_key_templates_and_functions_are_checked_when_the_decorator_is_applied() -> None:
    async def rename(self: Any, person: Named, new_name: str, *, notify: bool = False) -> None:
        return None

    with pytest.raises(TypeError, match=r"key\(person, new_name, notify=\)"):
        cache_evict("p", key=lambda person: person.name)(rename)
    with pytest.raises(ValueError, match="names 'user', which is not one of its parameters"):
        cache_evict("p", key="{user.name}")(rename)
    with pytest.raises(ValueError, match="format specs"):
        cacheable("p", key="{person.name!r}")(rename)
    with pytest.raises(ValueError, match="names no parameter"):
        cacheable("p", key="constant")(rename)
    with pytest.raises(ValueError, match="malformed"):
        cacheable("p", key="{person")(rename)
    with pytest.raises(TypeError, match="template string"):
        cacheable("p", key=42)(rename)  # type: ignore[arg-type]
    # the right shapes are accepted
    cache_evict("p", key=lambda person, new_name, notify: person.id)(rename)
    cache_evict("p", key=lambda *args, **kwargs: args[0].id)(rename)
    cache_evict("p", key="{person.id}:{notify}")(rename)


async def test_a_template_key_matches_the_key_a_read_caches_under(cache: CacheBackend) -> None:
    calls: list[int] = []

    @cacheable("user")
    async def get(user_id: int) -> int:
        calls.append(user_id)
        return user_id

    @cache_evict("user", key="{person.id}")
    async def touch(person: Named) -> None:
        return None

    await get(7), await get(7)
    await touch(Named(7, "x"))
    await get(7)
    assert calls == [7, 7]


def test_decorators_keep_the_signature() -> None:
    async def get(self: Any, user_id: int, *, active: bool = True) -> str:
        """Doc."""
        return ""

    for decorated in (cacheable("p")(get), cache_evict("p")(get)):
        assert inspect.signature(decorated) == inspect.signature(get)
        assert decorated.__doc__ == "Doc." and decorated.__name__ == "get"
        assert inspect.iscoroutinefunction(decorated)


class Tier(enum.Enum):
    GOLD = "gold"


@dataclasses.dataclass
class Invoice:
    number: uuid.UUID
    issued: dt.datetime
    total: Decimal
    tier: Tier


class Customer(BaseModel):
    id: uuid.UUID
    since: dt.date
    credit: Decimal


async def test_models_and_dataclasses_come_back_equal_from_a_hit(cache: CacheBackend) -> None:
    invoice = Invoice(
        uuid.uuid4(), dt.datetime(2024, 1, 2, 3, 4, 5, 6, dt.UTC), Decimal("9.90"), Tier.GOLD
    )
    customer = Customer(id=uuid.uuid4(), since=dt.date(2020, 2, 29), credit=Decimal("-1.50"))

    @cacheable("values")
    async def load(x: int) -> tuple[Invoice, Customer]:
        return invoice, customer

    await load(1)
    hit = await load(1)
    assert hit == (invoice, customer) and cache.stats().hits == 1
    assert hit[0] is not invoice


async def test_a_string_with_a_colon_and_two_arguments_never_share_an_entry(
    cache: CacheBackend,
) -> None:
    @cacheable("shared")
    async def one(a: str) -> str:
        return f"one({a})"

    @cacheable("shared")
    async def two(a: int, b: int) -> str:
        return f"two({a},{b})"

    assert await one("1:2") == "one(1:2)"
    assert await two(1, 2) == "two(1,2)"
    assert await one("1:2") == "one(1:2)"
    assert await two(1, 2) == "two(1,2)"
