"""One public surface: what each package exports, and that the reference shows public paths.

Users import from ``viveka_db``; a subpackage exports only what users of that part call
(see "Module import paths" in ``docs/reference/index.md``). Internal modules import from
the module that defines a name, never through a package ``__init__``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import viveka_db

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"

#: package -> its ``__all__``, exactly
PACKAGE_EXPORTS: dict[str, set[str]] = {
    "viveka_db.cache": {
        "CacheBackend",
        "CacheStats",
        "MemoryCache",
        "NullCache",
        "RedisCache",
        "get_cache",
        "register_backend",
        "use_cache",
    },
    "viveka_db.codegen": {"SchemaKind", "render_module", "schema_for"},
    "viveka_db.config": {
        "CacheSettings",
        "ConfigSource",
        "DatabaseSettings",
        "VivekaSettings",
        "load_settings",
    },
    "viveka_db.dialects": {"DialectAdapter", "adapter_for", "translate_error"},
    "viveka_db.health": {"ComponentHealth", "HealthReport", "check_health", "health_endpoint"},
    "viveka_db.locks": {"AdvisoryLock", "advisory_lock"},
    "viveka_db.migrations": {"run_migrations", "run_sql"},
    "viveka_db.outbox": {
        "OutboxEvent",
        "OutboxRelay",
        "Published",
        "RelayOptions",
        "on_event",
        "publish",
    },
    "viveka_db.replicas": {"ReplicaState"},
    "viveka_db.telemetry": {"set_providers"},
    "viveka_db.tenancy": {
        "AuditMixin",
        "TenantMixin",
        "acting_as",
        "all_tenants",
        "current_actor",
        "current_tenant",
        "include_deleted",
        "tenant",
    },
    "viveka_db.testing": {"EntityFactory", "factory_for"},
}

#: packages that only group modules: they export nothing
GROUPING_PACKAGES = [
    "viveka_db.base",
    "viveka_db.cli",
    "viveka_db.context",
    "viveka_db.decorator",
    "viveka_db.integrations",
    "viveka_db.middleware",
    "viveka_db.repository",
    "viveka_db.session",
    "viveka_db.transaction",
]

DIRECTIVE = re.compile(r"^::: (viveka_db[\w.]*)$", re.M)


def _directives() -> list[str]:
    pages = sorted(REFERENCE.glob("*.md"))
    return [path for page in pages for path in DIRECTIVE.findall(page.read_text())]


@pytest.mark.parametrize(("package", "exports"), sorted(PACKAGE_EXPORTS.items()))
def test_package_exports_what_users_call(package: str, exports: set[str]) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == exports
    for name in exports:
        assert getattr(module, name) is not None, f"{package}.{name}"
        if name in viveka_db.__all__:
            assert getattr(module, name) is getattr(viveka_db, name), f"{package}.{name}"


@pytest.mark.parametrize("package", GROUPING_PACKAGES)
def test_grouping_packages_export_nothing(package: str) -> None:
    module = importlib.import_module(package)
    assert getattr(module, "__all__", []) == []
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, type(module))
    }
    assert public == set(), package


def test_every_public_name_has_a_reference_entry_at_its_public_path() -> None:
    shown = set(_directives())
    missing = [f"viveka_db.{name}" for name in viveka_db.__all__ if name != "__version__"]
    assert [path for path in missing if path not in shown] == []


def test_the_reference_shows_no_public_name_at_its_defining_module() -> None:
    deep = [
        path
        for path in _directives()
        if path.count(".") > 1 and path.rsplit(".", 1)[1] in viveka_db.__all__
    ]
    assert deep == []


#: a user repository's public attributes, exactly as docs/how-to/repositories.md lists them
REPOSITORY_ATTRIBUTES = {
    # CRUD by key and field
    "insert_all",
    "get_by_id",
    "get_or_raise",
    "get_all",
    "update",
    "delete",
    "delete_entity",
    "exists",
    "count",
    "find_by_field",
    "find_all_by_field",
    # saving and upserts
    "save",
    "save_all",
    "upsert_all",
    "get_or_create_all",
    # finding and queries
    "find_by",
    "find_all_by",
    "where",
    "select",
    "all",
    "first",
    "count_grouped_by",
    "project",
    "stream",
    # pages
    "get_page",
    "get_slice",
    # soft delete
    "soft_delete",
    "restore",
    "with_deleted",
    "only_deleted",
    # work queues
    "claim_batch",
    # context
    "db",
    "model",
    "data_source",
    # settings a subclass may set
    "default_load",
    "sortable",
    "max_page_size",
}


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def test_a_user_repository_exposes_exactly_the_documented_attributes() -> None:
    from tests.core.models import Item

    class ItemRepo(viveka_db.DbRepo[Item]):
        pass

    repo = ItemRepo()
    assert _public(repo) == REPOSITORY_ATTRIBUTES
    assert _public(ItemRepo) == REPOSITORY_ATTRIBUTES - {"model"}  # set per instance
    assert _public(viveka_db.DbRepo(Item)) == REPOSITORY_ATTRIBUTES
    assert _public(repo.with_deleted()) == REPOSITORY_ATTRIBUTES  # views too


def test_the_repository_page_lists_exactly_these_attributes() -> None:
    page = (ROOT / "docs" / "how-to" / "repositories.md").read_text(encoding="utf-8")
    section = page.split("## What a repository exposes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| [^|]+ \| (.+) \|$", section, re.M)
    listed = [name for row in rows[1:] for name in re.findall(r"`(\w+)`", row)]
    assert len(listed) == len(set(listed))
    assert set(listed) == REPOSITORY_ATTRIBUTES
