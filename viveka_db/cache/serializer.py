"""Turning cached values into bytes and back, without ``pickle``.

A writable Redis must never mean code execution, so payloads are JSON (orjson). Types
JSON lacks are written as tagged objects ``{"~": tag, ...}`` and restored exactly:
``datetime``/``date``/``time``/``timedelta``, ``Decimal``, ``UUID``, ``Enum``, ``bytes``,
tuples, sets, dicts with non-string keys, dataclasses, Pydantic models and ORM entities
(restored as *detached* instances of their class holding every column value, and the
relationships that were loaded when the entity was cached, to :data:`MAX_RELATIONSHIP_DEPTH`
levels; a relationship that leads back to an entity being written is cut). A relationship
that was not stored raises :class:`~viveka_db.LazyLoadError` when touched, as on any
detached entity. A plain dict that happens to contain the key ``"~"`` is tagged too, so it
cannot be mistaken.

Classes are looked up, never imported: a payload can only name a class of a module that
is already loaded, and only of the expected kind (an entity, a dataclass, a model, an
enum). Anything unexpected raises :class:`CorruptPayloadError`, which callers treat as a
miss.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import math
import sys
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import Enum
from typing import Any, cast

import orjson
from pydantic import BaseModel
from sqlalchemy.orm import Mapper, configure_mappers
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from viveka_db.compat import detached_entity

__all__ = ["MAX_RELATIONSHIP_DEPTH", "CorruptPayloadError", "UnserializableError", "dumps", "loads"]

MAX_RELATIONSHIP_DEPTH = 3
"""How many levels of loaded relationships a cached entity keeps (``article.author.profile``)."""

_TAG = "~"
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class UnserializableError(TypeError):
    """The value holds something the cache cannot store safely."""


class CorruptPayloadError(ValueError):
    """A payload that this serialiser did not write, or that no longer fits the code."""


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes; :class:`UnserializableError` if any part cannot be stored."""
    try:
        return orjson.dumps(_encode(value))
    except UnserializableError:
        raise
    except (TypeError, ValueError, orjson.JSONEncodeError) as exc:
        raise UnserializableError(str(exc)) from exc


def loads(payload: bytes, *, reuse: bool = False) -> Any:
    """The value ``payload`` holds; :class:`CorruptPayloadError` for anything unexpected.

    ``reuse``: the caller may pass this very ``bytes`` object again (a backend that keeps
    payloads in process memory, :attr:`~viveka_db.cache.backend.CacheBackend.stable_payloads`).
    An entity whose column values are all immutable is then rebuilt from its decoded
    values the next time, without parsing: every call still returns a new instance.
    """
    if reuse:
        known = _reusable.get(id(payload))
        if known is not None and known[0] is payload:
            return _entity_from(known[1], known[2])
    try:
        tree: Any = orjson.loads(payload)
        node = cast("dict[str, Any]", tree) if type(tree) is dict else None  # pyright: ignore[reportUnknownArgumentType]
        if reuse and node is not None and node.get(_TAG) == "orm" and "r" not in node:
            plan, values = _entity_values(node)
            if all(type(value) in _IMMUTABLE for value in values.values()):
                _remember(payload, plan, values)
            return _entity_from(plan, values)
        return _decode(tree)
    except CorruptPayloadError:
        raise
    except Exception as exc:
        raise CorruptPayloadError(f"{type(exc).__name__}: {exc}") from None


REUSE_LIMIT = 4096
"""How many payloads :func:`loads` keeps the decoded values of (oldest forgotten first)."""
_reusable: dict[int, tuple[bytes, _EntityPlan, dict[str, Any]]] = {}
"""By ``id(payload)``; the entry holds the payload itself, so the id cannot be reused."""
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, Decimal, uuid.UUID}
    | {dt.datetime, dt.date, dt.time, dt.timedelta}
)
"""Value types a rebuilt entity may share with the next one (enums are decoded per call)."""


def _remember(payload: bytes, plan: _EntityPlan, values: dict[str, Any]) -> None:
    if len(_reusable) >= REUSE_LIMIT:
        # another thread (an event loop of its own) may be trimming at the same moment
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del _reusable[next(iter(_reusable))]
    _reusable[id(payload)] = (payload, plan, values)


# -- encoding -----------------------------------------------------------------------------

_classes: dict[str, type[Any]] = {}
"""Classes met while encoding, by name: lets this process restore local classes too."""


def _class_name(cls: type[Any]) -> str:
    name = f"{cls.__module__}:{cls.__qualname__}"
    if _classes.get(name) is not cls:
        _classes[name] = cls
    return name


def _encode(value: Any) -> Any:
    kind: type[Any] = type(value)  # pyright: ignore[reportUnknownVariableType]
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else {_TAG: "int", "v": str(value)}
    if kind is float:
        return value if math.isfinite(value) else {_TAG: "float", "v": repr(value)}
    if kind is list:
        return [_encode(item) for item in value]
    if kind is dict:
        if _TAG not in value and all(type(k) is str for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {_TAG: "map", "v": [[_encode(k), _encode(v)] for k, v in value.items()]}
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return encoder(value)
    return _encode_object(value, kind)


def _encode_object(value: Any, kind: type[Any]) -> Any:
    if isinstance(value, Enum):
        return {_TAG: "enum", "c": _class_name(kind), "v": _encode(value.value)}
    mapper: object = getattr(kind, "__mapper__", None)
    if isinstance(mapper, Mapper):
        return _encode_entity(value, kind, mapper, ())  # pyright: ignore[reportUnknownArgumentType]
    if isinstance(value, BaseModel):
        return {_TAG: "model", "c": _class_name(kind), "v": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TAG: "dc", "c": _class_name(kind), "v": fields}
    for base, encoder in _ENCODERS.items():  # subclasses of str, int, datetime, ...
        if isinstance(value, base):
            return encoder(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return _encode(int(value))
    if isinstance(value, list | tuple):
        items = cast("Iterable[Any]", value)
        return _encode(list(items) if isinstance(value, list) else tuple(items))
    raise UnserializableError(f"cannot cache a value of type {kind.__module__}.{kind.__qualname__}")


def _encode_entity(value: Any, kind: type[Any], mapper: Mapper[Any], path: tuple[int, ...]) -> Any:
    """Columns under ``"v"``; loaded relationships under ``"r"`` (``path``: ancestors' ids)."""
    state = instance_state(value)
    loaded = state.dict
    columns: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        key = prop.key
        if key not in loaded:
            raise UnserializableError(
                f"{kind.__name__}.{key} is not loaded; an entity is cached only with every "
                "column value (load it, or do not defer that column)"
            )
        columns[key] = _encode(loaded[key])
    node: dict[str, Any] = {_TAG: "orm", "c": _class_name(kind), "v": columns}
    if len(path) < MAX_RELATIONSHIP_DEPTH:
        related = _encode_relationships(value, mapper, loaded, (*path, id(value)))
        if related:
            node["r"] = related
    return node


def _encode_relationships(
    value: Any, mapper: Mapper[Any], loaded: dict[str, Any], path: tuple[int, ...]
) -> dict[str, Any]:
    related: dict[str, Any] = {}
    for rel in mapper.relationships:
        if rel.key not in loaded:
            continue  # not loaded: stays unloaded (LazyLoadError when touched)
        target = loaded[rel.key]
        members: list[Any] = [] if target is None else list(target) if rel.uselist else [target]
        if any(id(member) in path for member in members):
            continue  # a cycle back to an entity being written: cut here
        encoded = [
            _encode_entity(m, type(m), m.__mapper__, path)  # pyright: ignore[reportUnknownArgumentType]
            for m in members
        ]
        related[rel.key] = encoded if rel.uselist else (encoded[0] if encoded else None)
    return related


def _encode_datetime(value: dt.datetime) -> Any:
    return {_TAG: "dt", "v": value.isoformat()}


_ENCODERS: dict[type[Any], Callable[[Any], Any]] = {
    dt.datetime: _encode_datetime,
    dt.date: lambda v: {_TAG: "date", "v": v.isoformat()},
    dt.time: lambda v: {_TAG: "time", "v": v.isoformat()},
    dt.timedelta: lambda v: {_TAG: "td", "v": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v: {_TAG: "dec", "v": str(v)},
    uuid.UUID: lambda v: {_TAG: "uuid", "v": v.hex},
    bytes: lambda v: {_TAG: "bytes", "v": base64.b64encode(v).decode()},
    tuple: lambda v: {_TAG: "tuple", "v": [_encode(item) for item in v]},
    set: lambda v: {_TAG: "set", "v": [_encode(item) for item in v]},
    frozenset: lambda v: {_TAG: "fset", "v": [_encode(item) for item in v]},
}


# -- decoding -----------------------------------------------------------------------------


def _decode(node: Any) -> Any:
    kind: type[Any] = type(node)  # pyright: ignore[reportUnknownVariableType]
    if kind is dict:
        tag = node.get(_TAG)
        if tag is None:
            return {k: _decode(v) for k, v in node.items()}
        decoder = _DECODERS.get(tag)
        if decoder is None:
            raise CorruptPayloadError(f"unknown tag {tag!r}")
        return decoder(node)
    if kind is list:
        return [_decode(item) for item in node]
    return node


def _resolve(name: object, check: Callable[[type[Any]], bool]) -> type[Any]:
    """The class ``name`` refers to, from classes already loaded; never imports anything."""
    if not isinstance(name, str):
        raise CorruptPayloadError("class name missing")
    cls = _classes.get(name)
    if cls is None:
        module_name, _, qualname = name.partition(":")
        target: Any = sys.modules.get(module_name)
        for part in qualname.split("."):
            target = getattr(target, part, None) if part != "<locals>" else None
        if not isinstance(target, type):
            raise CorruptPayloadError(f"class {name!r} is not loaded in this process")
        cls = target
    if not check(cls):
        raise CorruptPayloadError(f"{name!r} is not a cacheable class of the expected kind")
    _classes[name] = cls
    return cls


class _EntityPlan:
    """What decoding one entity class needs, worked out once (entity hits are the hot path)."""

    __slots__ = ("cls", "columns", "mapper", "primary_key", "relationships")

    def __init__(self, cls: type[Any]) -> None:
        configure_mappers()
        mapper: Mapper[Any] = cls.__mapper__
        self.cls = cls
        self.mapper = mapper
        self.columns = frozenset(prop.key for prop in mapper.column_attrs)
        self.primary_key = tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key)
        self.relationships = {rel.key: rel.uselist for rel in mapper.relationships}


_entity_plans: dict[str, _EntityPlan] = {}


def _entity_plan(name: object) -> _EntityPlan:
    cls = _resolve(name, lambda c: isinstance(getattr(c, "__mapper__", None), Mapper))
    plan = _entity_plans[str(name)] = _EntityPlan(cls)
    return plan


def _decode_entity(node: dict[str, Any]) -> Any:
    """A detached instance holding every column value, as if loaded and then detached."""
    plan, values = _entity_values(node)
    instance = _entity_from(plan, values)
    related = node.get("r")
    if related is not None:
        _restore_relationships(instance, plan, related)
    return instance


def _entity_values(node: dict[str, Any]) -> tuple[_EntityPlan, dict[str, Any]]:
    """The entity class's plan and the decoded column values of an entity node."""
    name = node.get("c")
    plan = _entity_plans.get(name) if isinstance(name, str) else None
    if plan is None:
        plan = _entity_plan(name)
    found: object = node["v"]
    values = cast("dict[str, Any]", found)
    if type(found) is not dict or values.keys() != plan.columns:
        raise CorruptPayloadError(f"cached {plan.cls.__name__} does not match its current columns")
    for key, value in values.items():
        if type(value) is dict or type(value) is list:
            values[key] = _decode(value)
    return plan, values


def _entity_from(plan: _EntityPlan, values: dict[str, Any]) -> Any:
    """A new detached instance holding a copy of ``values``.

    :func:`viveka_db.compat.detached_entity` builds it (the version-checked fast path, or
    ``make_transient_to_detached``).
    """
    return detached_entity(plan.mapper, plan.primary_key, values)


def _restore_relationships(instance: Any, plan: _EntityPlan, related: object) -> None:
    if type(related) is not dict:
        raise CorruptPayloadError("cached relationships are not a mapping")
    for key, encoded in cast("dict[str, Any]", related).items():
        uselist = plan.relationships.get(key)
        if uselist is None:
            raise CorruptPayloadError(f"{plan.cls.__name__} has no relationship {key!r}")
        if uselist:
            if type(encoded) is not list:
                raise CorruptPayloadError(f"cached {plan.cls.__name__}.{key} is not a list")
            items = cast("list[object]", encoded)
            value: Any = [_decode_related(item) for item in items]
        else:
            value = None if encoded is None else _decode_related(encoded)
        set_committed_value(instance, key, value)


def _decode_related(node: object) -> Any:
    if type(node) is not dict or cast("dict[str, Any]", node).get(_TAG) != "orm":
        raise CorruptPayloadError("a cached relationship holds something other than an entity")
    return _decode_entity(cast("dict[str, Any]", node))


def _decode_dataclass(node: dict[str, Any]) -> Any:
    cls = _resolve(node.get("c"), lambda c: dataclasses.is_dataclass(c))
    values = {k: _decode(v) for k, v in node["v"].items()}
    fields = dataclasses.fields(cls)
    init = {f.name: values[f.name] for f in fields if f.init and f.name in values}
    instance = cls(**init)
    for field in fields:
        if not field.init and field.name in values:
            object.__setattr__(instance, field.name, values[field.name])
    return instance


def _decode_model(node: dict[str, Any]) -> Any:
    cls = _resolve(node.get("c"), lambda c: issubclass(c, BaseModel))
    return cls.model_validate(node["v"])


def _decode_enum(node: dict[str, Any]) -> Any:
    cls = _resolve(node.get("c"), lambda c: issubclass(c, Enum))
    return cls(_decode(node["v"]))


def _decode_map(node: dict[str, Any]) -> Any:
    return {_decode(k): _decode(v) for k, v in node["v"]}


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "orm": _decode_entity,
    "dt": lambda n: dt.datetime.fromisoformat(n["v"]),
    "date": lambda n: dt.date.fromisoformat(n["v"]),
    "time": lambda n: dt.time.fromisoformat(n["v"]),
    "td": lambda n: dt.timedelta(days=n["v"][0], seconds=n["v"][1], microseconds=n["v"][2]),
    "dec": lambda n: Decimal(n["v"]),
    "uuid": lambda n: uuid.UUID(hex=n["v"]),
    "enum": _decode_enum,
    "model": _decode_model,
    "dc": _decode_dataclass,
    "bytes": lambda n: base64.b64decode(n["v"], validate=True),
    "tuple": lambda n: tuple(_decode(item) for item in n["v"]),
    "set": lambda n: {_decode(item) for item in n["v"]},
    "fset": lambda n: frozenset(_decode(item) for item in n["v"]),
    "map": _decode_map,
    "int": lambda n: int(n["v"]),
    "float": lambda n: float(n["v"]),
}
