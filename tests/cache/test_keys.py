"""Keys from call arguments: shared by equivalent calls, distinct for distinct calls."""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import uuid
from decimal import Decimal
from typing import Any

import pytest

from viveka_db import cache_evict, cacheable
from viveka_db.cache.keys import KeyBuilder


class Color(enum.Enum):
    RED = "red"


class Svc:
    async def one(self, user_id: int) -> None: ...
    async def two(self, a: object, b: object = 5) -> None: ...
    async def var(self, *args: object, **kwargs: object) -> None: ...


async def single(x: object) -> None: ...
async def pair(a: object, b: object) -> None: ...


def key(fn: Any, *args: Any, **kwargs: Any) -> str:
    return KeyBuilder(fn).build(args, kwargs)


def test_the_documented_single_argument_form() -> None:
    svc = Svc()
    assert key(Svc.one, svc, 42) == "42"
    assert key(single, "alice") == "alice"


def test_positional_keyword_and_defaults_share_one_key() -> None:
    svc = Svc()
    assert key(Svc.one, svc, 1) == key(Svc.one, svc, user_id=1)
    assert key(Svc.two, svc, 1) == key(Svc.two, svc, 1, 5) == key(Svc.two, svc, b=5, a=1)


def test_self_is_not_part_of_the_key() -> None:
    assert key(Svc.one, Svc(), 7) == key(Svc.one, Svc(), 7)


def test_joined_strings_never_collide_with_argument_lists() -> None:
    assert key(single, "1:2") != key(pair, 1, 2)
    assert key(single, "1:2") != key(pair, "1", "2")
    assert key(pair, "a:b", "c") != key(pair, "a", "b:c")


def test_distinct_values_of_different_types_get_distinct_keys() -> None:
    values: list[object] = [
        1,
        "1",
        1.0,
        True,
        None,
        "None",
        "~n",
        "",
        Decimal("1"),
        "-1",
        -1,
        uuid.UUID(int=1),
        dt.date(2024, 1, 1),
        "2024-01-01",
        dt.datetime(2024, 1, 1),
        Color.RED,
        "red",
        (1, 2),
        [1, 2],
        "1,2",
        {"a": 1},
        frozenset({1}),
        b"1",
        ("1", "2"),
        ("1,2",),
        ((1, 2),),
        "~s1",
        "%3A",
        ":",
    ]
    keys = [key(single, v) for v in values]
    assert len(set(keys)) == len(values)
    pairs = [
        key(pair, a, b) for a, b in itertools.product(["a", "a:b", ":", "b", 1, "1"], repeat=2)
    ]
    assert len(set(pairs)) == len(pairs)
    assert all(":" not in k for k in keys)


def test_long_keys_are_hashed() -> None:
    long_key = key(single, "x" * 1000)
    assert long_key.startswith("~h") and len(long_key) < 100
    assert long_key != key(single, "x" * 999)


def test_arguments_without_a_safe_identity_are_rejected_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"single.*object.*key="):
        key(single, object())


def test_bad_calls_report_the_function() -> None:
    with pytest.raises(TypeError, match="one"):
        key(Svc.one, Svc(), 1, 2)


def test_key_callable_matches_the_argument_encoding() -> None:
    async def update(user: Any) -> None: ...

    class User:
        id = 3

    builder = KeyBuilder(update, lambda user: user.id)
    assert builder.build((User(),), {}) == key(Svc.one, Svc(), 3)
    assert KeyBuilder(update, lambda user: (1, "a")).build((User(),), {}) == key(pair, 1, "a")


def test_decoration_time_validation() -> None:
    with pytest.raises(ValueError, match="key_prefix"):
        cacheable("")
    with pytest.raises(ValueError, match="braces"):
        cache_evict("a{b}")
    with pytest.raises(ValueError, match="ttl"):
        cacheable("p", ttl=0)
    with pytest.raises(TypeError, match="async def"):
        cacheable("p")(lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match=r"names 'id', which is not one of its parameters: x"):
        cacheable("p", key="{id}")(single)
