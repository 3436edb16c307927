"""Pins the public namespace: one sorted ``__all__``, every name importable, and
the original product's documented import paths."""

from __future__ import annotations

import importlib
from pathlib import Path

import viveka_db


def test_all_is_sorted_unique_and_importable() -> None:
    names = viveka_db.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(viveka_db, name) is not None, name
        if name != "__version__":
            module = getattr(getattr(viveka_db, name), "__module__", "viveka_db")
            assert module.startswith("viveka_db"), (name, module)


def test_names_the_issue_and_design_promise_are_exported() -> None:
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
        # D12 / D18: mapped database errors
        "ConstraintViolationError",
        "DuplicateKeyError",
        "ForeignKeyViolationError",
        "NotNullViolationError",
        "CheckViolationError",
        "RetryableTransactionError",
        "SerializationFailureError",
        "DeadlockError",
        "translate_error",
        "check_health",  # D18 (observability, issue 13)
        "health_endpoint",
        "ReplicaState",  # issue 12: DatabaseSessionFactory.replica_states() items
    }
    assert promised <= set(viveka_db.__all__)


def test_documented_import_paths() -> None:
    documented = {
        "viveka_db.base.db_base": ["VivekaDbBase"],
        "viveka_db.base.db_repo": ["DbRepo", "Page"],
        "viveka_db.decorator.db_decorator": [
            "entity",
            "table",
            "repository",
            "transactional",
            "cacheable",
            "cache_evict",
        ],
        "viveka_db.session.db_session": ["DatabaseSessionFactory"],
        "viveka_db.middleware.db_middleware": ["DbMiddleware"],
        "viveka_db.context.db_context": ["current_session"],
        "viveka_db.cache.db_cache": ["RedisCache"],
    }
    for module_name, names in documented.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert hasattr(module, name), f"{module_name}.{name}"
            if name in viveka_db.__all__:
                assert getattr(module, name) is getattr(viveka_db, name), f"{module_name}.{name}"


def test_typed_marker_is_shipped() -> None:
    assert (Path(viveka_db.__file__).parent / "py.typed").is_file()
