"""``codegen schemas`` output imports and validates rows; ``schema_for`` agrees with it."""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel, ValidationError

from tests.tooling.cli import ROOT, cli_env, run_cli
from tests.tooling.tool_models import Tier, ToolNote, ToolPerson
from viveka_db import schema_for

MODULE = "tests.tooling.tool_models"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("codegen") / "tool_schemas.py"
    result = run_cli(
        "codegen", "schemas", MODULE, "--output", str(out), cwd=out.parent, env=cli_env()
    )
    assert "ToolNote, ToolPerson" in result.stdout
    spec = importlib.util.spec_from_file_location("tool_schemas_generated", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_generated_module_defines_three_models_per_entity(generated: ModuleType) -> None:
    for entity in ("ToolPerson", "ToolNote"):
        for kind in ("Create", "Update", "Read"):
            assert issubclass(getattr(generated, f"{entity}{kind}"), BaseModel)


def test_generated_read_validates_an_entity_row(generated: ModuleType) -> None:
    row = ToolPerson(
        id=7,
        name="Grace",
        email="grace@example.com",
        nickname=None,
        tier=Tier.PRO,
        balance=decimal.Decimal("12.50"),
        active=True,
        born=datetime.date(1906, 12, 9),
    )
    read = generated.ToolPersonRead.model_validate(row)
    assert read.model_dump() == {
        "id": 7,
        "name": "Grace",
        "email": "grace@example.com",
        "nickname": None,
        "tier": Tier.PRO,
        "balance": decimal.Decimal("12.50"),
        "active": True,
        "born": datetime.date(1906, 12, 9),
    }
    with pytest.raises(ValidationError):
        generated.ToolPersonRead.model_validate({"id": "x", "name": "n", "email": "e"})


def test_generated_create_and_update_shapes(generated: ModuleType) -> None:
    create = generated.ToolPersonCreate(name="Ada", email="ada@example.com")
    assert "id" not in generated.ToolPersonCreate.model_fields  # autoincrement key
    assert create.model_dump(exclude_unset=True) == {"name": "Ada", "email": "ada@example.com"}
    with pytest.raises(ValidationError):
        generated.ToolPersonCreate(email="no-name@example.com")  # name is required
    with pytest.raises(ValidationError):
        generated.ToolPersonCreate(name="x" * 51, email="a@b.c")  # String(50)
    with pytest.raises(ValidationError):
        generated.ToolPersonCreate(name="Ada", email="a@b.c", tier="gold")  # not a Tier
    update = generated.ToolPersonUpdate(nickname="countess")
    assert update.model_dump(exclude_unset=True) == {"nickname": "countess"}
    assert "id" not in generated.ToolPersonUpdate.model_fields
    note = generated.ToolNoteCreate(person_id=1, text="hi")
    assert note.person_id == 1


@pytest.mark.parametrize("kind", ["create", "update", "read"])
def test_schema_for_matches_the_generated_code(generated: ModuleType, kind: str) -> None:
    for entity in (ToolPerson, ToolNote):
        runtime = schema_for(entity, kind=kind)  # type: ignore[arg-type]
        source = getattr(generated, f"{entity.__name__}{kind.capitalize()}")
        assert runtime.__name__ == source.__name__
        assert set(runtime.model_fields) == set(source.model_fields)
        for name, field in runtime.model_fields.items():
            assert field.is_required() == source.model_fields[name].is_required(), (kind, name)
    assert schema_for(ToolPerson, kind=kind) is schema_for(ToolPerson, kind=kind)  # type: ignore[arg-type]


def test_schema_for_read_from_attributes() -> None:
    read = schema_for(ToolNote)
    assert read.model_validate(ToolNote(id=1, person_id=2, text="t")).model_dump() == {
        "id": 1,
        "person_id": 2,
        "text": "t",
    }


def test_schema_for_rejects_unknown_kind_and_unmapped_classes() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        schema_for(ToolNote, kind="delete")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a mapped entity"):
        schema_for(int)


def test_codegen_without_entities_fails_cleanly(tmp_path: Path) -> None:
    result = run_cli("codegen", "schemas", "json", cwd=tmp_path, env=cli_env(), check=False)
    assert result.returncode == 1
    assert "no entities found in json" in result.stderr


def test_the_examples_generated_schemas_are_current(tmp_path: Path) -> None:
    """``examples/shop/schemas_generated.py`` is exactly what the generator writes today."""
    committed = ROOT / "examples" / "shop" / "schemas_generated.py"
    result = run_cli("codegen", "schemas", "examples.shop.entities", cwd=tmp_path, env=cli_env())
    assert result.stdout == committed.read_text(), (
        "regenerate: viveka-db codegen schemas examples.shop.entities "
        "--output examples/shop/schemas_generated.py"
    )


def test_system_managed_columns_stay_out_of_create_and_update() -> None:
    from examples.shop.entities import User  # IntPKMixin + TimestampMixin

    assert set(schema_for(User, kind="create").model_fields) == {"name", "email"}
    assert set(schema_for(User, kind="update").model_fields) == {"name", "email"}
    assert {"id", "created_at", "updated_at"} <= set(schema_for(User, kind="read").model_fields)
