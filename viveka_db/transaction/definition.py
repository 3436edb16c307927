"""What a ``@transactional`` boundary asks for: propagation, isolation and rollback rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import cast

from viveka_db.config.isolation import Isolation

__all__ = ["MAX_RETRY", "REQUIRED", "Isolation", "Propagation", "TransactionDefinition"]

MAX_RETRY = 100
"""The most extra attempts ``@transactional(retry=...)`` accepts (a guard against typos)."""


class Propagation(enum.Enum):
    """How a boundary relates to a transaction already active in the current task (Spring)."""

    REQUIRED = "REQUIRED"
    """Join the current transaction, or start one."""
    REQUIRES_NEW = "REQUIRES_NEW"
    """Suspend the current transaction; run in a new session and transaction; resume."""
    NESTED = "NESTED"
    """Run inside a SAVEPOINT of the current transaction, or start one."""
    MANDATORY = "MANDATORY"
    """Join the current transaction; raise TransactionRequiredError if there is none."""
    SUPPORTS = "SUPPORTS"
    """Join the current transaction if there is one; otherwise run without one."""
    NOT_SUPPORTED = "NOT_SUPPORTED"
    """Suspend the current transaction and run without one."""
    NEVER = "NEVER"
    """Run without a transaction; raise IllegalTransactionStateError if one is active."""


def _parse_propagation(value: object) -> Propagation:
    if isinstance(value, Propagation):
        return value
    if isinstance(value, str) and value.upper() in Propagation.__members__:
        return Propagation[value.upper()]
    valid = ", ".join(f"Propagation.{m.name}" for m in Propagation)
    raise ValueError(f"propagation {value!r} is not valid; use one of: {valid}")


def _exception_types(name: str, value: object) -> tuple[type[BaseException], ...]:
    items: tuple[object, ...] = (
        tuple(cast("tuple[object, ...]", value))
        if isinstance(value, tuple | list | set | frozenset)
        else (value,)
    )
    result: list[type[BaseException]] = []
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{name} takes exception classes, got {item!r}")
        result.append(item)
    return tuple(result)


def _match_depth(
    exc_type: type[BaseException], rules: tuple[type[BaseException], ...]
) -> int | None:
    """How far up ``exc_type``'s MRO the closest rule sits (0 = exact), or ``None``."""
    best: int | None = None
    for rule in rules:
        try:
            depth = exc_type.__mro__.index(rule)
        except ValueError:
            continue
        if best is None or depth < best:
            best = depth
    return best


@dataclass(frozen=True, slots=True)
class TransactionDefinition:
    """The options of one ``@transactional`` boundary, validated once at decoration time."""

    propagation: Propagation = Propagation.REQUIRED
    read_only: bool = False
    isolation: Isolation | None = None
    timeout: float | None = None
    rollback_for: tuple[type[BaseException], ...] = ()
    no_rollback_for: tuple[type[BaseException], ...] = ()
    data_source: str | None = None
    retry: int = 0
    """How many more times a call that started the transaction is re-run after a
    :class:`~viveka_db.errors.RetryableTransactionError` (0: never)."""

    @classmethod
    def create(
        cls,
        *,
        propagation: Propagation | str = Propagation.REQUIRED,
        read_only: bool = False,
        isolation: Isolation | str | None = None,
        timeout: float | None = None,
        rollback_for: object = (),
        no_rollback_for: object = (),
        data_source: str | None = None,
        retry: int = 0,
    ) -> TransactionDefinition:
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if data_source is not None and (not isinstance(data_source, str) or not data_source):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"data_source must be a non-empty string, got {data_source!r}")
        if isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= MAX_RETRY:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(
                f"retry must be a whole number of extra attempts from 0 to {MAX_RETRY}, "
                f"got {retry!r}"
            )
        return cls(
            propagation=_parse_propagation(propagation),
            read_only=bool(read_only),
            isolation=None if isolation is None else Isolation.parse(isolation),
            timeout=None if timeout is None else float(timeout),
            rollback_for=_exception_types("rollback_for", rollback_for),
            no_rollback_for=_exception_types("no_rollback_for", no_rollback_for),
            data_source=data_source,
            retry=retry,
        )

    def should_rollback(self, exc: BaseException) -> bool:
        """Spring's rule: the closest matching rule wins; by default every error rolls back."""
        if not isinstance(exc, Exception) or not (self.rollback_for or self.no_rollback_for):
            return True
        exc_type = type(exc)
        commit_depth = _match_depth(exc_type, self.no_rollback_for)
        if commit_depth is None:
            return True
        rollback_depth = _match_depth(exc_type, self.rollback_for)
        return rollback_depth is not None and rollback_depth <= commit_depth


REQUIRED = TransactionDefinition()
"""The default definition (``Propagation.REQUIRED``, no options): repository methods' and
the unit of work's, defined once here."""
