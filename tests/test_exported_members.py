"""Pins the public namespace: one sorted ``__all__``, every name importable.

The module import paths kept as aliases are pinned in ``tests/test_import_aliases.py``.
"""

from __future__ import annotations

import typing
from pathlib import Path

import viveka_db

#: exported type aliases (annotations for ``load=`` and ``lock=``)
TYPE_ALIASES = {"LoadSpec", "LockMode"}


def test_all_is_sorted_unique_and_importable() -> None:
    names = viveka_db.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(viveka_db, name) is not None, name
        if name in TYPE_ALIASES:  # a Union / Literal reports the typing module
            assert typing.get_args(getattr(viveka_db, name)), name
        elif name != "__version__":
            module = getattr(getattr(viveka_db, name), "__module__", "viveka_db")
            assert module.startswith("viveka_db"), (name, module)


def test_promised_names_are_exported() -> None:
    promised = {
        "DatabaseSessionFactory",
        "DbMiddleware",
        "DbRepo",
        "Page",
        "VivekaDbBase",
        "entity",
        "table",
        "repository",
        "transactional",
        "cacheable",
        "cache_evict",
        "Propagation",
        "Isolation",
        "current_session",
        "after_commit",
        "get_registered_entities",
        "run_concurrently",
        "schema_for",
        "VivekaDbError",
        "NoSessionError",
        "TransactionRequiredError",
        "IllegalTransactionStateError",
        "UnexpectedRollbackError",
        "OptimisticLockError",
        # mapped database errors
        "ConstraintViolationError",
        "DuplicateKeyError",
        "ForeignKeyViolationError",
        "NotNullViolationError",
        "CheckViolationError",
        "RetryableTransactionError",
        "SerializationFailureError",
        "DeadlockError",
        "translate_error",
        "check_health",  # observability
        "health_endpoint",
        "ReplicaState",  # DatabaseSessionFactory.replica_states() items
    }
    assert promised <= set(viveka_db.__all__)


def test_typed_marker_is_shipped() -> None:
    assert (Path(viveka_db.__file__).parent / "py.typed").is_file()
