"""Cache keys from call arguments: ``get(1)`` and ``get(user_id=1)`` share one, and no two
distinct argument tuples ever share one.

The signature is inspected once, at decoration time; each call binds its arguments
(defaults applied, ``self``/``cls`` left out) and encodes every parameter into a token
that never contains ``:``. Tokens are joined with ``:``, so the documented one-argument
form is ``{prefix}:{first_arg}`` (``user:42``, ``user:alice``). The encoding is injective:
strings escape ``% : , ( ) =`` and are tagged (``~s``) when they could read as another
type (``"42"`` is ``~s42``, never ``42``); other types carry a ``~`` tag. Arguments whose
identity cannot be encoded safely (arbitrary objects, whose ``repr`` may hold a memory
address) raise a :class:`TypeError` that names the parameter and suggests ``key=``.

Under a current tenant (``with tenant(...):``) every key starts with the tenant
(``~g<tenant>:``), and inside ``with all_tenants():`` with ``~G:``, so a value cached for
one tenant is never served to another: the near-cache and Redis see different keys. No
argument token starts with ``~g``/``~G`` (those tags are used for nothing else).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import string
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from viveka_db.tenancy.context import tenant_filter

__all__ = ["KeyBuilder", "KeySpec", "encode_key_value", "validate_prefix"]

KeySpec = Callable[..., object] | str
"""``key=`` of ``@cacheable``/``@cache_evict``: a function of the method's arguments, or a
template such as ``"{user.id}"`` naming them."""

_MAX_KEY = 200
"""Longer argument keys are replaced by their SHA-256 (``~h...``) to keep Redis keys small."""

_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", ",": "%2C", "(": "%28", ")": "%29", "=": "%3D"})
_UNSAFE_START = frozenset("~-0123456789")


def validate_prefix(prefix: object, decorator: str) -> str:
    if not isinstance(prefix, str) or not prefix.strip():
        raise ValueError(f"{decorator} needs a non-empty key_prefix string, got {prefix!r}")
    if "{" in prefix or "}" in prefix:
        raise ValueError(f"{decorator} key_prefix may not contain braces, got {prefix!r}")
    return prefix


def encode_key_value(value: object) -> str:
    """One argument as a key token without ``:`` (injective across types)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str:
        return _encode_str(value)  # type: ignore[arg-type]
    return _encode_other(value, kind)


def _encode_str(value: str) -> str:
    escaped = value.translate(_ESCAPES)
    if not escaped or escaped[0] in _UNSAFE_START:
        return "~s" + escaped
    return escaped


def _encode_container(value: object) -> str | None:
    """Lists, tuples, sets and mappings, element by element; ``None`` for anything else."""
    if isinstance(value, list | tuple):
        items = cast("Iterable[object]", value)
        tag = "~L(" if isinstance(value, list) else "~l("
        return tag + ",".join(encode_key_value(item) for item in items) + ")"
    if isinstance(value, set | frozenset):
        items = cast("Iterable[object]", value)
        return "~S(" + ",".join(sorted(encode_key_value(item) for item in items)) + ")"
    if isinstance(value, Mapping):
        mapping = cast("Mapping[object, object]", value)
        pairs = sorted(f"{encode_key_value(k)}={encode_key_value(v)}" for k, v in mapping.items())
        return "~m(" + ",".join(pairs) + ")"
    return None


def _encode_other(value: object, kind: type[Any]) -> str:
    if value is None:
        return "~n"
    if kind is bool:
        return "~t" if value else "~f"
    if isinstance(value, Enum):
        return f"~e{_encode_str(kind.__qualname__)}.{_encode_str(value.name)}"
    if isinstance(value, bool | int):
        return encode_key_value(int(value))
    if isinstance(value, str):
        return _encode_str(str(value))
    if isinstance(value, float):
        return "~d" + repr(value)
    if isinstance(value, Decimal):
        return "~D" + str(value)
    if isinstance(value, uuid.UUID):
        return "~u" + value.hex
    if isinstance(value, dt.datetime):
        return "~T" + value.isoformat().translate(_ESCAPES)
    if isinstance(value, dt.date):
        return "~a" + value.isoformat()
    if isinstance(value, bytes):
        return "~b" + value.hex()
    container = _encode_container(value)
    if container is not None:
        return container
    identity = _entity_identity(value, kind)
    if identity is not None:
        return f"~E{_encode_str(kind.__qualname__)}{encode_key_value(identity)}"
    raise TypeError(
        f"cannot build a cache key from a {kind.__module__}.{kind.__qualname__}: only "
        "str, int, float, bool, None, Decimal, UUID, date/datetime, Enum, bytes, persisted "
        "entities and lists/tuples/sets/dicts of these identify a call safely"
    )


def _entity_identity(value: object, kind: type[Any]) -> tuple[Any, ...] | None:
    """The primary key of a persisted ORM entity, which identifies it across processes."""
    if getattr(kind, "__mapper__", None) is None:
        return None
    from sqlalchemy import inspect as sa_inspect

    state = sa_inspect(value, raiseerr=False)
    identity = getattr(state, "identity", None)
    return tuple(identity) if identity is not None else None


def _hash_if_long(key: str) -> str:
    if len(key) <= _MAX_KEY:
        return key
    return "~h" + hashlib.sha256(key.encode()).hexdigest()


_FORMATTER = string.Formatter()


class KeyTemplate:
    """``key="{user.id}"``: fields name the method's parameters (with ``.attr``/``[i]``).

    Each field's value is encoded like an argument, so ``"{user.id}"`` on an update gives
    the key that ``get(user_id)`` caches under; literal text is kept as written. Fields are
    checked against the parameters when the decorator is applied.
    """

    __slots__ = ("_parts", "text")

    def __init__(self, text: str, owner: str, parameters: list[str]) -> None:
        self.text = text
        self._parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise ValueError(f"key template {text!r} of {owner} is malformed: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if field is not None:
                root = field.split(".", 1)[0].split("[", 1)[0]
                if root not in parameters:
                    raise ValueError(
                        f"key template {text!r} of {owner} names {root!r}, which is not one of "
                        f"its parameters: {', '.join(parameters) or '(none)'}"
                    )
                if spec or conversion:
                    raise ValueError(
                        f"key template {text!r} of {owner}: format specs and conversions "
                        "(':...', '!r') are not allowed; values are encoded like arguments"
                    )
            self._parts.append((literal, field))
        if all(field is None for _, field in self._parts):
            raise ValueError(
                f"key template {text!r} of {owner} names no parameter; write e.g. "
                f"'{{{parameters[0] if parameters else 'arg'}}}' (no key= evicts the prefix)"
            )

    def render(self, arguments: dict[str, Any]) -> str:
        out: list[str] = []
        for literal, field in self._parts:
            out.append(literal)
            if field is not None:
                value, _ = _FORMATTER.get_field(field, (), arguments)
                out.append(encode_key_value(value))
        return "".join(out)


def _check_key_function(
    custom: Callable[..., object], owner: str, params: list[inspect.Parameter]
) -> None:
    """Refuse, at decoration time, a key function that cannot take the method's arguments."""
    try:
        signature = inspect.signature(custom)
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword = {p.name: None for p in params if p.kind is p.KEYWORD_ONLY}
    try:
        signature.bind(*(None for _ in positional), **keyword)
    except TypeError as exc:
        shown = ", ".join([*positional, *(f"{k}=" for k in keyword)])
        raise TypeError(
            f"key= of {owner} is called with the method's arguments, key({shown}), but its "
            f"signature {signature} cannot take them ({exc}); e.g. key=lambda {shown}: ..."
        ) from None


class KeyBuilder:
    """Builds the argument part of a key for one decorated function.

    ``custom`` (the decorator's ``key=``) is a template (:class:`KeyTemplate`) or a function
    called with the call's arguments (without ``self``, defaults applied, positionally as
    the method declares them); its result is encoded like one argument, or, if it is a
    tuple, like the argument list, so ``key=lambda user: user.id`` on an update matches
    ``get(user_id)``. Both are checked against the method's signature here, at decoration.
    """

    __slots__ = ("_custom", "_fast_arity", "_name", "_params", "_signature", "_template", "skip")

    def __init__(self, fn: Callable[..., Any], custom: KeySpec | None = None) -> None:
        self._name = getattr(fn, "__qualname__", repr(fn))
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters.values())
        self.skip = 1 if params and params[0].name in ("self", "cls") else 0
        """How many leading positional arguments are the receiver (never part of the key)."""
        self._params = params[self.skip :]
        simple = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in self._params)
        self._fast_arity = len(params) if simple else -1
        """Calls passing exactly this many positional arguments need no binding."""
        self._template: KeyTemplate | None = None
        self._custom: Callable[..., object] | None = None
        if isinstance(custom, str):
            self._template = KeyTemplate(custom, self._name, [p.name for p in self._params])
        elif custom is not None:
            if not callable(custom):
                raise TypeError(
                    f"key= must be a callable returning the key value or a template string "
                    f"such as '{{user_id}}', got {custom!r}"
                )
            _check_key_function(custom, self._name, self._params)
            self._custom = custom

    def build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        key = self._arguments_key(args, kwargs)
        filtered, tid = tenant_filter()
        if not filtered:
            return "~G:" + key
        if tid is None:
            return key
        return f"~g{encode_key_value(tid)}:{key}"

    def _arguments_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if self._template is not None:
            return self._from_template(args, kwargs)
        if self._custom is not None:
            return self._from_custom(args, kwargs)
        if not kwargs and len(args) == self._fast_arity:
            if self._fast_arity == self.skip + 1:  # the documented one-argument case
                value = args[self.skip]
                if type(value) is int:
                    return str(value)
            values: Any = args[self.skip :] if self.skip else args
        else:
            values = list(self._bind(args, kwargs).arguments.values())[self.skip :]
        try:
            if len(values) == 1:
                return _hash_if_long(encode_key_value(values[0]))
            return _hash_if_long(":".join([encode_key_value(v) for v in values]))
        except TypeError as exc:
            raise TypeError(
                f"{self._name}: {exc}; pass key=... to @cacheable/@cache_evict"
            ) from None

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self._name}() {exc}") from None
        bound.apply_defaults()
        return bound

    def _from_template(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        assert self._template is not None
        arguments = self._bind(args, kwargs).arguments
        try:
            return _hash_if_long(self._template.render(arguments))
        except (AttributeError, LookupError, TypeError) as exc:
            raise TypeError(
                f"{self._name}: key template {self._template.text!r} failed: {exc}"
            ) from None

    def _from_custom(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        assert self._custom is not None
        if not kwargs and len(args) == self._fast_arity:
            value = self._custom(*args[self.skip :])
        else:
            bound = self._bind(args, kwargs)
            value = self._custom(*bound.args[self.skip :], **bound.kwargs)
        try:
            if type(value) is tuple:
                items = cast("tuple[object, ...]", value)
                return _hash_if_long(":".join(encode_key_value(v) for v in items))
            return _hash_if_long(encode_key_value(value))
        except TypeError as exc:
            raise TypeError(f"{self._name}: the key= callable returned {exc}") from None
