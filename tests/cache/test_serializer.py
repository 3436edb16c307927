"""Values in and out of the cache: equal on the way back, and never executed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import pickle
import sys
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import BaseModel
from sqlalchemy import inspect

from tests.cache.models import CacheUser, column_values
from viveka_db.cache import serializer
from viveka_db.cache.serializer import CorruptPayloadError, UnserializableError, dumps, loads


class Status(enum.Enum):
    ACTIVE = "active"
    BLOCKED = 2


@dataclasses.dataclass(frozen=True)
class Invoice:
    number: uuid.UUID
    issued: dt.datetime
    total: Decimal
    status: Status
    lines: tuple[str, ...] = ()
    computed: int = dataclasses.field(default=0, init=False)


class Address(BaseModel):
    street: str
    since: dt.date


class Customer(BaseModel):
    id: uuid.UUID
    name: str
    credit: Decimal
    seen: dt.datetime
    address: Address
    tags: list[str] = []


def roundtrip(value: Any) -> Any:
    return loads(dumps(value))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        2**65,
        1.5,
        "text",
        "",
        [1, "a", None],
        {"a": [1, 2]},
        (1, 2),
        {1, 2},
        frozenset({"x"}),
        {1: "int key", "2": "str key"},
        {"~": "tilde"},
        b"\x00bytes",
        dt.datetime(2024, 5, 17, 12, 30, 15, 123456),
        dt.datetime(2024, 5, 17, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.date(2024, 2, 29),
        dt.time(23, 59, 1),
        dt.timedelta(days=-1, seconds=5),
        Decimal("12345678901234567890.123456789"),
        Decimal("-0.00"),
        uuid.UUID("8d4f5c2e-3b1a-4e6f-9a7b-2c1d0e9f8a76"),  # fixed: test ids must be stable
        Status.ACTIVE,
        Status.BLOCKED,
        [Status.ACTIVE, {"nested": (Decimal("1.1"),)}],
        float("inf"),
    ],
    ids=repr,
)
def test_values_round_trip_equal_and_with_their_type(value: Any) -> None:
    back = roundtrip(value)
    assert back == value
    assert type(back) is type(value)


def test_nan_round_trips() -> None:
    assert math.isnan(roundtrip(float("nan")))


def test_a_dataclass_with_datetime_decimal_and_uuid_fields_round_trips() -> None:
    invoice = Invoice(
        uuid.uuid4(), dt.datetime(2024, 1, 2, 3, 4, 5, 6), Decimal("99.95"), Status.BLOCKED, ("a",)
    )
    object.__setattr__(invoice, "computed", 7)
    back = roundtrip([invoice])
    assert back == [invoice] and type(back[0]) is Invoice and back[0].computed == 7


def test_a_pydantic_model_round_trips() -> None:
    customer = Customer(
        id=uuid.uuid4(),
        name="Ada",
        credit=Decimal("10.10"),
        seen=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        address=Address(street="Main", since=dt.date(2020, 1, 1)),
        tags=["x"],
    )
    back = roundtrip(customer)
    assert back == customer and type(back) is Customer


def test_an_entity_comes_back_detached_with_every_column() -> None:
    user = CacheUser(
        id=5, name="Ada", balance=Decimal("1.25"), joined=dt.datetime(2024, 1, 1), ref=uuid.uuid4()
    )
    back = roundtrip(user)
    assert type(back) is CacheUser and back is not user
    assert column_values(back) == column_values(user)
    state = inspect(back)
    assert state.detached and state.identity == (5,)
    assert not state.modified  # committed values, not pending changes


def test_an_entity_with_an_unloaded_column_is_not_serialisable() -> None:
    user = CacheUser(id=5, name="Ada")
    del inspect(user).dict["name"]
    with pytest.raises(UnserializableError, match="name"):
        dumps(user)


def test_arbitrary_objects_are_refused() -> None:
    with pytest.raises(UnserializableError, match="object"):
        dumps({"x": object()})


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x80\x04garbage",
        b'{"~": "nope", "v": 1}',
        b'{"~": "dc", "c": "os:system", "v": {}}',
        b'{"~": "orm", "c": "builtins:dict", "v": {}}',
        b'{"~": "dc", "c": "never_imported_module_xyz:Thing", "v": {}}',
        b'{"~": "orm", "c": "tests.cache.models:CacheUser", "v": {"id": 1}}',
        b'{"~": "dec", "v": "not a number"}',
        b'{"~": "model", "c": "tests.cache.test_serializer:Customer", "v": {"id": 3}}',
    ],
    ids=repr,
)
def test_foreign_or_corrupt_payloads_are_rejected(payload: bytes) -> None:
    with pytest.raises(CorruptPayloadError):
        loads(payload)


def test_decoding_never_imports_a_module() -> None:
    name = "json.tool"
    sys.modules.pop(name, None)
    with pytest.raises(CorruptPayloadError):
        loads(orjson.dumps({"~": "dc", "c": f"{name}:main", "v": {}}))
    assert name not in sys.modules


class Boom:
    def __reduce__(self) -> Any:
        return (exec, ("import builtins; builtins.VIVEKA_PWNED = True",))


def test_a_pickle_payload_is_never_executed() -> None:
    import builtins

    with pytest.raises(CorruptPayloadError):
        loads(pickle.dumps(Boom()))
    assert not hasattr(builtins, "VIVEKA_PWNED")


def test_reused_decoding_is_bounded_and_keyed_by_the_very_payload() -> None:
    """``loads(reuse=True)`` keeps the decoded values of at most ``REUSE_LIMIT`` payloads,
    and only an identical ``bytes`` object finds them: an equal copy is parsed again."""
    serializer._reusable.clear()
    joined = dt.datetime(2024, 1, 2, 3, 4, 5)

    def user(i: int) -> CacheUser:
        ref = uuid.UUID(int=i)
        return CacheUser(id=i, name=f"u{i}", balance=Decimal(i), joined=joined, ref=ref)

    payloads = [dumps(user(i)) for i in range(serializer.REUSE_LIMIT + 50)]
    for payload in payloads:
        assert loads(payload, reuse=True).id == int(orjson.loads(payload)["v"]["id"])
    assert len(serializer._reusable) == serializer.REUSE_LIMIT
    last = payloads[-1]
    assert id(payloads[0]) not in serializer._reusable  # the oldest went first
    copy = bytes(bytearray(last))
    assert copy == last and copy is not last
    assert loads(copy, reuse=True).name == loads(last, reuse=True).name == f"u{len(payloads) - 1}"
    assert serializer._reusable[id(last)][0] is last
    serializer._reusable.clear()
