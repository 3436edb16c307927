"""API schemas: generated from the entities, plus two request bodies written by hand.

``schemas_generated.py`` is the output of
``viveka-db codegen schemas examples.shop.entities --output examples/shop/schemas_generated.py``
(regenerate it after changing an entity). ``viveka_db.schema_for(User, kind="read")``
builds the same models at runtime, when static types are not needed.
"""

from __future__ import annotations

from pydantic import BaseModel

from examples.shop.schemas_generated import OrderRead, UserCreate, UserRead

__all__ = ["OrderCreate", "OrderRead", "UserCreate", "UserRead", "UserRename"]


class OrderCreate(BaseModel):
    item: str
    quantity: int = 1


class UserRename(BaseModel):
    name: str
